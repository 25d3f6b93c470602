"""Operations telemetry: one record per study step, appended to ``ops_telemetry.jsonl``.

docs/telemetry.md describes the fields, the file formats and the encrypted envelopes.
"""

from .emitter import TelemetryEmitter
from .record import SCHEMA_VERSION, make_record, record_problem, utc_now_iso

__all__ = ["SCHEMA_VERSION", "TelemetryEmitter", "make_record", "record_problem", "utc_now_iso"]
