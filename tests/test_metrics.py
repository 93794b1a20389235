"""Prometheus /metrics on the API and on the worker."""

import httpx

from tests.support import metric_value


async def test_api_metrics_count_requests_by_route_and_smols_started(stack, http):
    before = (await http.get("/metrics")).text
    await http.get("/")
    await http.get("/" + "a" * 64)
    await http.post("/", json={"prompt": "a metered melody"}, headers=stack.auth("GMETRICS"))
    after = (await http.get("/metrics")).text
    assert metric_value(after, "smol_api_requests_total", route="/", status="200", method="GET") >= metric_value(
        before, "smol_api_requests_total", route="/", status="200", method="GET") + 1  # fmt: skip
    assert metric_value(after, "smol_api_requests_total", route="/{id:smolid}", status="404") >= 1
    started = "smol_api_smols_started_total"
    assert metric_value(after, started) == metric_value(before, started) + 1
    assert "smol_api_request_seconds_bucket" in after


async def test_worker_metrics_have_temporal_and_smol_counters(stack, finished_smol):
    async with httpx.AsyncClient(timeout=10) as client:
        text = (await client.get(f"http://{stack.worker_metrics}/metrics")).text
    assert metric_value(text, "smol_started") >= 1 and metric_value(text, "smol_completed") >= 1
    assert metric_value(text, "smol_provider_call_duration_count", step="image", provider="local") >= 1
    assert "temporal_workflow_completed" in text and "temporal_activity_execution_latency" in text


async def test_worker_logs_are_json_lines_with_the_smol_id(stack, temporal, task_queue, tmp_path):
    import json
    import signal

    from contracts.smol import Payload, SmolInput
    from smol.ids import new_smol_id
    from workflows.smol import SmolWorkflow

    log_path = tmp_path / "worker.log"
    with open(log_path, "wb") as log:
        worker = stack.start_worker(log=log, task_queue=task_queue)
        try:
            smol_id = new_smol_id()
            handle = await temporal.start_workflow(SmolWorkflow.run, SmolInput(smol_id, Payload("GLOGS", "logged")),
                                                   id=smol_id, task_queue=task_queue)  # fmt: skip
            await handle.result()
        finally:
            worker.send_signal(signal.SIGTERM)
            worker.wait(timeout=30)
    entries = [json.loads(line) for line in log_path.read_text().splitlines() if line.startswith("{")]
    about = [e for e in entries if e.get("smol_id") == smol_id]
    assert {e["activity_type"] for e in about} >= {"generate_image", "describe_image", "generate_lyrics"}
    assert any("image call to local took" in e["message"] for e in about)
    assert all({"ts", "level", "logger", "message"} <= set(e) for e in entries)
