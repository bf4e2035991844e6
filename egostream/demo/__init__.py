"""``egostream demo``: the whole main job on synthetic data, with nothing downloaded.

Five steps, each a plain function of the :class:`DemoConfig` and the output folder (:class:`DemoPaths`), one module
each (settings in :mod:`egostream.demo.config`, orchestration in :mod:`egostream.demo.runner`):

1. :func:`synthesize` (:mod:`~egostream.demo.dataset`): a small Ego4D-format dataset
   (:func:`egostream.ego4d.synthetic.generate_dataset`) and one H.264 video per dataset video, rendered with PyAV from
   its annotations (:func:`frame_labels`, :func:`render_labelled_frames`): each frame shows the current action's verb
   and noun, the current MQ moment and the object state of the current OSCC/PNR sample as coloured, striped quadrants,
   so a tiny extractor sees the structure every task is about.
2. :func:`extract` (:mod:`~egostream.demo.features`): the videos' features in the Ego4D layout through
   :func:`egostream.actors.commands.extract_features` (the ``egostream extract`` code path), so training, replay and
   streaming read the same rows.
3. :func:`train_model` (:mod:`~egostream.demo.training`): a tiny multi-task Hier-EgoPack (all five heads) with
   :func:`egostream.train.loop.train`.
4. :func:`stream_held_out` (:mod:`~egostream.demo.streaming`): a held-out (val) video through
   decode → extract → engine → sink as Ray actors on a local Ray instance started and stopped here, a live table of
   the windows on the terminal, the windows written as msgpack frames.
5. :func:`evaluate` (:mod:`~egostream.demo.scoring`): the val split replayed with the trained model
   (:func:`egostream.replay.replay`) next to the class-prior chance level
   (:func:`egostream.ego4d.baselines.write_prior_submission`), and the streamed windows' current-action readout against
   the ground-truth action of their span.

:func:`run_demo` runs the steps in order. It is deterministic (every draw is seeded, torch runs on one thread) and
resumable: a finished step leaves ``OUT/steps/<step>.json`` and is reused by the next run (``force=True`` starts
afresh); an interrupted step resumes where its own machinery can (feature files, training epochs, replayed tasks).
Then the streamed windows become the timeline report (:func:`egostream.report.write_report`, with the ground truth
and the video's thumbnails) in ``OUT/report/`` (:func:`write_demo_report`), and its path is printed.
"""
from __future__ import annotations

from egostream.demo.config import DEFAULT_DEMO_CONFIG, HEADLINE_METRICS, DemoConfig, DemoPaths, load_demo_config
from egostream.demo.dataset import FrameLabels, frame_labels, render_labelled_frames, synthesize
from egostream.demo.features import extract
from egostream.demo.training import train_model
from egostream.demo.streaming import held_out_video, stream_held_out, window_truth
from egostream.demo.scoring import evaluate
from egostream.demo.runner import STEPS, DemoReport, StepResult, metrics_table, run_demo, write_demo_report

__all__ = ["DemoConfig", "DemoPaths", "DemoReport", "FrameLabels", "StepResult", "DEFAULT_DEMO_CONFIG", "STEPS",
           "load_demo_config", "frame_labels", "render_labelled_frames", "synthesize", "extract", "train_model",
           "stream_held_out", "evaluate", "run_demo", "write_demo_report", "held_out_video", "window_truth",
           "metrics_table", "HEADLINE_METRICS"]
