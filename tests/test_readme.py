"""Every code snippet of the README runs as written, against the running app,
with exactly the installs the README names beside it: the Python ones in a
fresh virtual environment, the JavaScript one with @gradio/client (tests/js).
Each snippet prints what the README says it prints, on any CPU kind."""
import re
import shutil
import subprocess
import venv

import pytest
from conftest import ROOT

README = (ROOT / "README.md").read_text()
JS = ROOT / "tests" / "js"


def snippets(language: str) -> list[tuple[str, str]]:
    """(the install command named last before it, the code) of each fenced block."""
    out = []
    for block in re.finditer(rf"```{language}\n(.*?)```", README, re.S):
        before = README[:block.start()]
        installs = re.findall(r"`((?:pip|npm) install [^`]+)`", before)
        out.append((installs[-1] if installs else "", block.group(1)))
    return out


def printed(code: str) -> list[str]:
    """What a snippet says its last print prints: the comment line after it, and the
    line in brackets another CPU kind prints ("# A   (B where ...)" -> [A, B])."""
    calls = [m.end() for m in re.finditer(r"\b(?:print|console\.log)\(", code)]
    said = re.search(r"^(?:#|//) (.+)$", code[calls[-1]:], re.M) if calls else None
    if said is None:
        return []
    first, _, rest = said.group(1).partition("(")
    other = re.match(r"([^()]*?) where", rest)
    return [first.strip()] + ([other.group(1).strip()] if other else [])


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    """A folder like a clone's, for snippets that read examples/ and write gradcam.png."""
    d = tmp_path_factory.mktemp("readme")
    (d / "examples").symlink_to(ROOT / "examples")
    return d


@pytest.fixture(scope="module")
def fresh_python(tmp_path_factory):
    """A new virtual environment with pip and nothing else."""
    env = tmp_path_factory.mktemp("venv") / "env"
    venv.EnvBuilder(with_pip=True).create(env)
    return env / "bin" / "python"


def run(cmd: list[str], cwd, timeout: int = 600) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, f"{' '.join(map(str, cmd))}:\n{proc.stdout[-1500:]}\n{proc.stderr[-3000:]}"
    return proc


def test_the_readme_python_snippets_run_in_a_fresh_venv(app_url, workdir, fresh_python):
    python = snippets("python")
    assert len(python) == 2 and all(i.startswith("pip install gradio_client") for i, _ in python)
    for install, code in python:
        run([str(fresh_python), "-m", "pip", "install", "-q", *install.split()[2:]], workdir)
        proc = run([str(fresh_python), "-c", code.replace("http://127.0.0.1:7860/", app_url)], workdir, 180)
        expected = printed(code)
        if "print(" in code:   # its line, as the README says, on either precision (after the client's "Loaded as API")
            assert expected and proc.stdout.strip().splitlines()[-1] in expected, (proc.stdout, expected)
    assert (workdir / "gradcam.png").stat().st_size > 10_000   # the drawing script saved its picture


def test_the_readme_javascript_snippet_runs(app_url, workdir):
    node = shutil.which("node")
    if node is None:
        pytest.skip("Node is not installed")
    (install, code), = snippets("js")
    assert install == "npm install @gradio/client"
    if not (JS / "node_modules" / "@gradio" / "client").is_dir():
        pytest.fail("@gradio/client is not installed: run npm ci --prefix tests/js")
    if not (workdir / "node_modules").exists():
        (workdir / "node_modules").symlink_to(JS / "node_modules")   # what `npm install` here would give
    (workdir / "snippet.mjs").write_text(code.replace("http://127.0.0.1:7860/", app_url))
    proc = run([node, "snippet.mjs"], workdir, 120)
    assert printed(code) and proc.stdout.strip() in printed(code), (proc.stdout, printed(code))
