"""For operators: /healthz for a load balancer or an orchestrator, /metrics for Prometheus."""

from webapp.ops.routes import bp

__all__ = ["bp"]
