"""Chokepoints for external tools: every call to nginx, promtool, docker compose and
terraform goes through one function per tool, which raises a typed error carrying the
command, its exit code and its output."""
