from mlflow.tracking import MlflowClient

from curriculum.report.tracking import Tracker, default_tracking_uri


def test_params_metrics_and_resume_continue_the_same_run(tmp_path):
    uri = default_tracking_uri(tmp_path)
    tracker = Tracker(uri, experiment="exp", run_name="r1")
    params = {f"section.key{i}": i for i in range(150)}  # more than one log_batch of params
    tracker.log_params(params)
    tracker.log_metrics({"eval/overall": 0.25, "eval/level_1": 0.9}, step=0)
    tracker.finish()

    resumed = Tracker(uri, experiment="exp", run_name="r1", run_id=tracker.run_id)
    resumed.log_metrics({"eval/overall": 0.5}, step=1)
    resumed.finish()

    client = MlflowClient(tracking_uri=uri)
    run = client.get_run(tracker.run_id)
    assert run.data.params["section.key149"] == "149"
    history = client.get_metric_history(tracker.run_id, "eval/overall")
    assert [(m.step, m.value) for m in sorted(history, key=lambda m: m.step)] == [(0, 0.25), (1, 0.5)]
    assert run.info.status == "FINISHED"
    assert len(client.search_runs([run.info.experiment_id])) == 1
