"""The JupyterLab that `make course` starts, for a student and for an instructor.

A student's lab offers nbgrader's Validate and nothing that fails without an
nbgrader exchange or gradebook ("The exchange directory does not exist",
"Error fetching courses!"); `ROLE=instructor` brings back formgrader,
Create Assignment and the course and assignment lists.
"""

import json
import os
import re
import socket
import subprocess
import time
import urllib.error
import urllib.request

import pytest

from conftest import ROOT

TOKEN = "rlllm-test"
NBGRADER_TOOLS = ["@jupyter/nbgrader:assignment-list", "@jupyter/nbgrader:course-list",
                  "@jupyter/nbgrader:create-assignment", "@jupyter/nbgrader:formgrader",
                  "@jupyter/nbgrader:menu"]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http(url, data=None):
    """(HTTP status, body) of a request with the server's token."""
    req = urllib.request.Request(url, data=data, headers={"Authorization": f"token {TOKEN}"})
    try:
        with urllib.request.urlopen(req, timeout=120) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


@pytest.fixture(params=["student", "instructor"])
def lab(request):
    role = request.param
    port = free_port()
    env = dict(os.environ, JUPYTER_TOKEN=TOKEN)
    env.pop("JUPYTER_CONFIG_PATH", None)
    proc = subprocess.Popen(["make", "course", "HEADLESS=1", f"PORT={port}", f"ROLE={role}"], cwd=ROOT,
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(120):
            try:
                if http(f"{url}/api/status")[0] == 200:
                    break
            except OSError:
                pass
            time.sleep(0.5)
        else:
            pytest.fail(f"`make course ROLE={role}` did not serve {url} within a minute")
        yield role, url
    finally:
        os.killpg(proc.pid, 15)
        proc.wait(timeout=30)


def page_config(url):
    status, html = http(f"{url}/lab")
    assert status == 200
    return json.loads(re.search(r'<script id="jupyter-config-data" type="application/json">(.*?)</script>',
                                html, re.S).group(1))


@pytest.mark.slow
def test_students_get_validate_and_instructors_get_nbgraders_tools(lab):
    role, url = lab
    disabled = set(page_config(url).get("disabledExtensions", []))
    if role == "student":
        assert set(NBGRADER_TOOLS) <= disabled
        assert "@jupyter/nbgrader:validate-assignment" not in disabled
        # the server side of those tools is off too, so nothing asks for an exchange
        assert http(f"{url}/formgrader")[0] == 404
        assert http(f"{url}/assignments")[0] == 404
        assert http(f"{url}/courses")[0] == 404
    else:
        assert not set(NBGRADER_TOOLS) & disabled
        assert http(f"{url}/formgrader")[0] == 200
    # Validate works in both: it runs the release and names what is left to fill in
    path = "notebooks/00_rl_basics/00_rl_basics.ipynb"
    status, body = http(f"{url}/assignments/validate", data=f"path={path}".encode())
    assert status == 200, body
    result = json.loads(body)
    assert result["success"], result
    assert "fill in `discounted_returns` above" in json.dumps(result["value"])


def test_a_release_notebook_opens_unmodified():
    # JupyterLab writes the kernel's kernelspec and language_info into the notebook when it
    # opens it, and marks it modified unless they are equal already: the release carries them
    from jupyter_client.manager import start_new_kernel
    from jupyter_client.kernelspec import KernelSpecManager

    spec = KernelSpecManager().get_kernel_spec("python3")
    km, kc = start_new_kernel(kernel_name="python3")
    try:
        kc.kernel_info()
        reply = kc.get_shell_msg(timeout=60)
        while reply["msg_type"] != "kernel_info_reply":
            reply = kc.get_shell_msg(timeout=60)
        language_info = reply["content"]["language_info"]
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)
    runtime = (ROOT / "binder" / "runtime.txt").read_text().strip().removeprefix("python-")
    for path in sorted(ROOT.glob("notebooks/*/*.ipynb")):
        meta = json.loads(path.read_text())["metadata"]
        assert meta["kernelspec"] == {"display_name": spec.display_name, "language": spec.language,
                                      "name": "python3"}, path
        # the patch version is the kernel's own; the rest must match exactly
        assert {**meta["language_info"], "version": None} == {**language_info, "version": None}, path
        assert meta["language_info"]["version"].startswith(runtime + "."), path
