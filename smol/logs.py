"""One JSON object per log line, carrying the smol id wherever it is known.

Inside activities and workflows the Temporal SDK attaches the workflow id (which is the smol id) to each record;
elsewhere code may pass `extra={"smol_id": ...}`.
"""

import json
import logging
import time


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        temporal = getattr(record, "temporal_activity", None) or getattr(record, "temporal_workflow", None) or {}
        smol_id = getattr(record, "smol_id", None) or temporal.get("workflow_id")
        if smol_id:
            entry["smol_id"] = smol_id
        for key in ("activity_type", "workflow_type", "attempt"):
            if key in temporal:
                entry[key] = temporal[key]
        if record.exc_info:
            entry["error"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


def configure(level: str = "INFO", fmt: str = "json") -> None:
    handler = logging.StreamHandler()
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
