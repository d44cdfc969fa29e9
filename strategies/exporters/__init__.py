"""Exporters: a strategy spec written back as the manifests of the systems users run (Argo Rollouts, Flagger)."""
