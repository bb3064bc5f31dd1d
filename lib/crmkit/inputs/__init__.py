"""Inputs: reading the client's exports, validating the workspace, caching the validated inputs of a
run, scaffolding a new workspace."""
