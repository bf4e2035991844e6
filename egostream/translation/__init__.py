"""Task translation (EgoT2-s) as a cross-task module beside EgoPack: frozen task-specific source models, a
transformer over their per-node task views, and the primary task's head on the translated tokens.

The surface a registry of cross-task modules needs: :class:`TranslationBundle` (load with
:meth:`TranslationBundle.from_checkpoints`, detect with :func:`is_translation_checkpoint`, build fresh with
:func:`build_translation`, which the ``translation`` training stage of :mod:`egostream.train.stages` calls), and
streaming (:class:`egostream.translation.streaming.StreamingTranslation`, or ``WindowEmitter`` with one multi-task
source).
"""
from egostream.translation.bundle import TranslationBundle, build_translation, is_translation_checkpoint
from egostream.translation.config import PRIMARY_TASKS, TranslationConfig
from egostream.translation.sources import FrozenSources, SourceViews
from egostream.translation.translator import TaskTranslator, TokenBuilder, Translation, time_encoding

__all__ = ["TranslationBundle", "build_translation", "is_translation_checkpoint", "PRIMARY_TASKS",
           "TranslationConfig", "FrozenSources", "SourceViews", "TaskTranslator", "TokenBuilder", "Translation",
           "time_encoding"]
