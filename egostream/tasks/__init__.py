"""Task heads (AR, LTA, OSCC, PNR, MQ): projection neck, head, loss and decoding, one module each.

``TASKS`` maps the short names "ar", "lta", "oscc", "pnr", "mq" to the task classes; each class carries the
authors' name ("ego4d/ar", ...) in ``authors_name``, and :func:`task_class` accepts either; :func:`task_names` is
the task list in order (built-ins first, then plug-in tasks registered by other modules).
"""
from egostream.tasks.base import TASKS, Task, TaskConfig, TaskInputs, task_class, task_names
from egostream.tasks.ar import ARConfig, ARTask
from egostream.tasks.lta import LTAConfig, LTATask
from egostream.tasks.mq import MQConfig, MQTask
from egostream.tasks.oscc import OSCCConfig, OSCCTask
from egostream.tasks.pnr import PNRConfig, PNRTask

__all__ = ["TASKS", "Task", "TaskConfig", "TaskInputs", "task_class", "task_names", "ARConfig", "ARTask", "LTAConfig",
           "LTATask", "MQConfig", "MQTask", "OSCCConfig", "OSCCTask", "PNRConfig", "PNRTask"]
