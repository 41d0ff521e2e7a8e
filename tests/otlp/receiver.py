"""An OTLP/HTTP receiver for the runtime's telemetry test, built on the OpenTelemetry
project's own protobuf definitions (the opentelemetry-proto package).

Usage: python receiver.py OUT_FILE
Listens on 127.0.0.1 (a free port, printed on the first line of standard output), decodes
every ExportTraceServiceRequest (POST /v1/traces) and ExportMetricsServiceRequest (POST
/v1/metrics), and appends one JSON line per span and per metric data point to OUT_FILE.
"""

import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
    ExportMetricsServiceResponse,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

OUT = sys.argv[1]


def attributes(attrs):
    out = {}
    for kv in attrs:
        value = kv.value
        kind = value.WhichOneof("value")
        out[kv.key] = getattr(value, kind) if kind else None
    return out


def spans(body):
    request = ExportTraceServiceRequest()
    request.ParseFromString(body)
    for resource in request.resource_spans:
        service = attributes(resource.resource.attributes).get("service.name")
        for scope in resource.scope_spans:
            for span in scope.spans:
                yield {
                    "kind": "span",
                    "service": service,
                    "name": span.name,
                    "trace_id": span.trace_id.hex(),
                    "span_id": span.span_id.hex(),
                    "parent_span_id": span.parent_span_id.hex(),
                    "attributes": attributes(span.attributes),
                }
    return ExportTraceServiceResponse()


def metrics(body):
    request = ExportMetricsServiceRequest()
    request.ParseFromString(body)
    for resource in request.resource_metrics:
        service = attributes(resource.resource.attributes).get("service.name")
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                data = metric.WhichOneof("data")
                for point in getattr(metric, data).data_points:
                    value = None
                    if data in ("sum", "gauge"):
                        value = point.as_int if point.WhichOneof("value") == "as_int" else point.as_double
                    elif data == "histogram":
                        value = point.count
                    yield {
                        "kind": "metric",
                        "service": service,
                        "name": metric.name,
                        "type": data,
                        "value": value,
                        "attributes": attributes(point.attributes),
                    }


class Handler(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("content-length", "0")))
        if self.path == "/v1/traces":
            records, answer = list(spans(body)), ExportTraceServiceResponse()
        elif self.path == "/v1/metrics":
            records, answer = list(metrics(body)), ExportMetricsServiceResponse()
        else:
            self.send_response(404)
            self.end_headers()
            return
        with open(OUT, "a", encoding="utf-8") as out:
            for record in records:
                out.write(json.dumps(record) + "\n")
        payload = answer.SerializeToString()
        self.send_response(200)
        self.send_header("content-type", "application/x-protobuf")
        self.send_header("content-length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args):
        pass


server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
print(server.server_address[1], flush=True)
server.serve_forever()
