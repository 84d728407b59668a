"""Self-improving curriculum experiments on LLM reasoning (see README.md and DESIGN.md).

Safe defaults for every process that imports the package (the CLI, tests, Ray workers): no
telemetry from Hugging Face, MLflow or Ray, and no fetch of MLflow's model catalog (its LLM
traces would otherwise download price lists from GitHub: a run works offline). Set before any of
them is imported, since they read these variables at import time; a user's own setting wins.
"""

import os

for _name, _value in {
    "HF_HUB_DISABLE_TELEMETRY": "1",
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "RAY_USAGE_STATS_ENABLED": "0",
    "MLFLOW_MODEL_CATALOG_URI": "",
    "MLFLOW_ENABLE_ASYNC_LOGGING": "false",  # a metric is written when log_metric returns
}.items():
    os.environ.setdefault(_name, _value)
