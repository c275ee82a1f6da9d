"""Importing the definitions, which every run and every `dagster` command does first."""

import json
import subprocess
import sys
from pathlib import Path

import streams_t100

REPOSITORY_PACKAGE = Path(streams_t100.__file__).parent

# Run in a fresh interpreter, after `import dagster`: what Dagster does when it is imported
# is Dagster's own. Prints the audited events and the modules loaded, as JSON.
IMPORT_PROBE = """
import json, sys
import dagster

events = []
def record(event, arguments):
    if event == "open":
        path, mode = arguments[0], arguments[1]
        events.append(["open", str(path), mode])
    elif event in ("socket.connect", "subprocess.Popen", "os.mkdir", "os.remove", "os.rename"):
        events.append([event, str(arguments[0]), None])
sys.addaudithook(record)

import streams_t100.definitions

print(json.dumps({"events": events, "modules": sorted(sys.modules), "prefix": sys.prefix,
                  "base_prefix": sys.base_prefix}))
"""

# Modules of the webserver, the tests and the simulator, which no run needs.
NOT_NEEDED_BY_A_RUN = [
    "dagster_webserver",
    "playwright",
    "pytest",
    "streams_t100.simulator",
    "streams_t100.cli",
]


def import_definitions(tmp_path) -> dict:
    completed = subprocess.run(
        [sys.executable, "-c", IMPORT_PROBE],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    return json.loads(completed.stdout.strip().splitlines()[-1])


def test_import_does_no_io(tmp_path):
    probe = import_definitions(tmp_path)
    events = probe["events"]

    assert [event for event in events if event[0] != "open"] == []
    writes = [event for event in events if event[0] == "open" and event[2] not in (None, "r", "rb")]
    assert writes == []
    # Every file read is code or package metadata of the interpreter, the virtual
    # environment or the project itself.
    installed = (probe["prefix"], probe["base_prefix"], str(REPOSITORY_PACKAGE))
    assert [path for _, path, _ in events if not path.startswith(installed)] == []
    assert list(tmp_path.iterdir()) == []


def test_import_loads_only_what_runs_need(tmp_path):
    modules = set(import_definitions(tmp_path)["modules"])

    assert [name for name in NOT_NEEDED_BY_A_RUN if name in modules] == []
