"""What a run tells its user: evaluation, benchmark evaluation, pass@k, inspect, lineage, tables, MLflow."""
