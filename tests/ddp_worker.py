"""One rank of tests/test_training_loop.py's data-parallel test: `clothparse train` (the real command line),
instrumented to record which files this rank writes and the weights its model ends with
($CLOTHPARSE_TEST_OUT/rank<R>.json). Run by torchrun, not collected by pytest."""
import hashlib
import json
import os
import sys
import warnings
from pathlib import Path

warnings.simplefilter("ignore")

import torch  # noqa: E402

from clothparse_lib import cli  # noqa: E402
from clothparse_lib.training import resume  # noqa: E402

rank = int(os.environ["RANK"])
writes, final = [], {}


def recording(func, path_arg):
    def wrapper(*args, **kwargs):
        writes.append(str(args[path_arg]))
        return func(*args, **kwargs)
    return wrapper


def recording_each(func):
    def wrapper(files, *args, **kwargs):
        writes.extend(str(p) for p in files)
        return func(files, *args, **kwargs)
    return wrapper


resume.append_history = recording(resume.append_history, 0)
resume.save_checkpoints = recording_each(resume.save_checkpoints)
resume.write_json = recording(resume.write_json, 1)
after_fit = resume.Checkpointer.after_fit


def record_weights(self):
    after_fit(self)
    h = hashlib.sha256()
    for k, v in sorted(self.bare.state_dict().items()):
        h.update(k.encode() + v.detach().cpu().contiguous().numpy().tobytes())
    final.update(weights=h.hexdigest(), n_tensors=len(self.bare.state_dict()))


resume.Checkpointer.after_fit = record_weights
if os.environ.get("CLOTHPARSE_TEST_KILL_AFTER_EPOCHS"):  # every rank dies after that many epochs' checkpoints
    after_epoch, left = resume.Checkpointer.after_epoch, [int(os.environ["CLOTHPARSE_TEST_KILL_AFTER_EPOCHS"])]

    def killing(self):
        after_epoch(self)
        left[0] -= 1
        if left[0] == 0:
            raise SystemExit(3)

    resume.Checkpointer.after_epoch = killing
torch.set_num_threads(1)
code = cli.main(sys.argv[1:])
(Path(os.environ["CLOTHPARSE_TEST_OUT"]) / f"rank{rank}.json").write_text(json.dumps({"writes": writes, **final}))
sys.exit(code)
