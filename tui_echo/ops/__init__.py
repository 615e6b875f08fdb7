"""How tui-echo fits among an operator's services: systemd (socket activation, readiness, watchdog) and
Prometheus metrics. The service (``tui_echo/service.py``) runs them beside the server."""
