"""A model configuration in a few words, for table titles: only what differs from the defaults."""

from __future__ import annotations

from senet_cli.options import ExternalConfig, ModelConfig


def short_options(config: ModelConfig | ExternalConfig) -> str:
    """The options that differ from the defaults, plus the ratio of a ratio-using module (a model
    outside the zoo: its keywords and the attention classes named for it); its subject says which
    (senet_cli/subject.py)."""
    from senet_cli.subject import subject_for

    return subject_for(config).short_text()
