"""``nni.retiarii.execution``: the strategy-side execution API."""
from nniray.strategies.nas.base import (budget_exhausted, get_execution_engine, is_stopped_exec,  # noqa: F401
                                        list_models, query_available_resources, set_execution_engine,
                                        submit_models, wait_models)

__all__ = ["submit_models", "wait_models", "list_models", "query_available_resources", "is_stopped_exec",
           "budget_exhausted", "get_execution_engine", "set_execution_engine"]
