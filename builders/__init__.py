"""Buildbot factories, schedulers and change sources (Buildbot stage)."""
