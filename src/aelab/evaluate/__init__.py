"""What trained autoencoders are measured by, as functions of models, codes and arrays (the
steps call them; a notebook can too): one module per question.

- ``codes``: what the codes are good for: probes, fine-tuning, k-means, sparsity, novelty AUROC;
- ``clustering``: IDEC deep clustering and ACC/NMI/ARI;
- ``embeddings``: 2-D maps of codes and their trustworthiness;
- ``likelihood``: importance-sampled negative log-likelihood beside the ELBO;
- ``image_quality``: PSNR and SSIM of reconstructions.
"""

from __future__ import annotations

from .codes import (
    CodeClassifier,
    accuracy_report,
    cluster_accuracy,
    decoder_filters,
    encode,
    finetune,
    kmeans_scores,
    linear_probe,
    novelty_auroc,
    predict,
    reconstruction_errors,
    sparsity_stats,
)

__all__ = ["CodeClassifier", "accuracy_report", "cluster_accuracy", "decoder_filters", "encode", "finetune",
           "kmeans_scores", "linear_probe", "novelty_auroc", "predict", "reconstruction_errors", "sparsity_stats"]
