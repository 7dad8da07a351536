"""Monte-Carlo studies: the whole pipeline vmapped over runs, sharded over devices."""
from mrjax.sim._study import DEFAULT_METHODS, StudyConfig, StudyResult, one_run, pool_run, run_keys, run_study

__all__ = ["DEFAULT_METHODS", "StudyConfig", "StudyResult", "one_run", "pool_run", "run_keys", "run_study"]
