"""Artifact storage behind one small interface; implementations are chosen by URI scheme."""
