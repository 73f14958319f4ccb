"""Searches: ``[search]`` in a study file samples ranges with Optuna and prunes bad trials.

``_space`` finds and checks the ranges, ``_schema`` declares and checks ``[search]`` when the
study loads (a :class:`SearchPlan` in ``Study.search``), ``_driver`` runs Optuna's ask/tell
with the trials stored in the run folder (:class:`Search`), and ``report`` turns the stored
trials into a table, figures and the confirmation runs' statistics. Optuna is imported only
when a search runs.
"""

from ._driver import (
           JOURNAL,
           Best,
           PruneCallback,
           Search,
           load_search,
           make_pruner,
           make_sampler,
           trial_name,
)
from ._schema import SearchConfig, SearchPlan, check_no_ranges, check_search

__all__ = ["Search", "SearchPlan", "SearchConfig", "Best", "PruneCallback", "check_search", "check_no_ranges", "load_search",
           "make_sampler", "make_pruner", "trial_name", "JOURNAL"]
