"""`deepswap ui` in a real browser: Playwright driving Debian's Chromium through the whole flow on the
bundled GRID clips at tiny sizes, against the real server started as the CLI starts it.

Screenshots of each step go to ``$DEEPSWAP_UI_SCREENSHOTS`` (default: a pytest temp folder).
"""

from __future__ import annotations

import os
import re
import time
from pathlib import Path
from typing import Iterator

import pytest
from live_ui import running_ui

playwright = pytest.importorskip("playwright.sync_api")

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]
TINY_MODEL = "resolution=32 width=8 latent=32"
pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(not CHROMIUM.is_file(), reason="needs Debian's chromium (apt-get install chromium)")]


def wait_until(page, expression: str, timeout: float) -> None:
    """Poll ``expression`` in the page until it is true (Playwright's wait_for_function evaluates its
    predicate with eval, which the UI's Content-Security-Policy rightly refuses)."""
    deadline = time.monotonic() + timeout
    while not page.evaluate(expression):
        assert time.monotonic() < deadline, f"timed out waiting for {expression}"
        time.sleep(0.25)


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    with playwright.sync_playwright() as driver:
        context = driver.chromium.launch_persistent_context(
            tmp_path_factory.mktemp("chromium-profile"), executable_path=str(CHROMIUM), args=CHROMIUM_FLAGS,
            headless=True, viewport={"width": 1280, "height": 900})
        yield context
        context.close()


@pytest.fixture(scope="module")
def screenshots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = Path(os.environ.get("DEEPSWAP_UI_SCREENSHOTS") or tmp_path_factory.mktemp("ui-screenshots"))
    folder.mkdir(parents=True, exist_ok=True)
    print(f"screenshots in {folder}")
    return folder


def test_the_whole_flow_in_a_browser(browser, screenshots: Path, tmp_path: Path, s1_clips: list[Path],
                                     speaker_clips: list[Path]) -> None:
    root = tmp_path / "root"
    root.mkdir()
    page = browser.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on("console", lambda line: errors.append(line.text) if "Content Security Policy" in line.text else None)
    preview_versions: set[str] = set()
    page.on("request", lambda request: preview_versions.add(request.url)
            if "/model/preview.png?v=" in request.url else None)
    expect = playwright.expect
    with running_ui(root) as server:
        # A workspace with 128-px faces
        page.goto(server.url)
        page.fill("input[name=folder]", "demo")
        page.fill("input[name=a]", "s1")
        page.fill("input[name=b]", "lrwp9a")
        page.click("text=Advanced")
        page.fill("input[name=face_size]", "128")
        page.click("text=Create workspace")
        page.wait_for_url("**/w/demo/sources")

        # Footage: one clip of each, uploaded from the browser
        lrwp9a = next(clip for clip in speaker_clips if clip.stem == "lrwp9a")
        for person, clip in (("a", s1_clips[0]), ("b", lrwp9a)):
            card = page.locator(f"#person-{person}")
            card.locator("input[name=files]").set_input_files(clip)
            card.locator("button", has_text="Upload").click()
            expect(page.locator(f"#person-{person} td.uri")).to_have_text(clip.name)
        page.screenshot(path=screenshots / "1-sources.png", full_page=True)

        # Faces: extract with live progress, then the grid
        page.click("nav.tabs >> text=Faces")
        page.fill("input[name=fps]", "10")
        page.click("text=Extract faces")  # (it may finish before the page has shown it running)
        expect(page.locator("#job .badge")).to_have_text("finished", timeout=180_000)
        expect(page.locator(".tile").first).to_be_visible()
        faces_before = page.locator(".tile").count()
        assert faces_before >= 10

        # Mark faces by click and by dragging, undo, then remove one for good
        tiles = page.locator(".tile")
        tiles.nth(0).click()
        expect(page.locator("#marked-count")).to_have_text("1 marked")
        first, third = tiles.nth(0).bounding_box(), tiles.nth(2).bounding_box()
        page.mouse.move(first["x"] + 20, first["y"] + 20)
        page.mouse.down()
        page.mouse.move(third["x"] + 40, third["y"] + 40, steps=5)
        page.mouse.up()
        expect(page.locator("#marked-count")).to_have_text("3 marked")
        expect(page.locator(".tile.marked")).to_have_count(3)
        page.click("#undo")
        expect(page.locator("#marked-count")).to_have_text("1 marked")
        page.screenshot(path=screenshots / "2-faces.png", full_page=False)
        removed = tiles.nth(0).get_attribute("data-id")
        page.click("#apply")
        expect(page.locator(".tile")).to_have_count(faces_before - 1)
        expect(page.locator(f'.tile[data-id="{removed}"]')).to_have_count(0)

        # Train a tiny model until stopped: the loss chart grows and the preview refreshes live
        page.click("nav.tabs >> text=Train")
        page.select_option("select[name=budget]", "")
        page.fill("input[name=batch_size]", "4")
        page.click("text=Advanced")
        page.fill("input[name=architecture]", TINY_MODEL)
        page.fill("input[name=preview_every]", "5")
        page.click("text=Start training")
        expect(page.locator("#job .badge")).to_have_text("running")
        wait_until(page, "Number(document.getElementById('loss-chart').dataset.points || 0) >= 20", 180)
        expect(page.locator("#job .task-loss")).to_contain_text("loss A")
        expect(page.locator("#job .task-rate")).to_contain_text("iterations/s")
        assert len(preview_versions) >= 2, preview_versions
        page.screenshot(path=screenshots / "3-train.png", full_page=True)
        page.reload()  # a reloaded page reconnects to the running job and its whole loss history
        expect(page.locator("#job .badge")).to_have_text("running")
        wait_until(page, "Number(document.getElementById('loss-chart').dataset.points || 0) >= 25", 180)
        page.click("#job >> text=Stop")
        expect(page.locator("#job .badge")).to_have_text("stopped", timeout=120_000)
        assert int(page.locator("#saved-iteration").inner_text()) >= 20
        expect(page.locator("#preview")).to_be_visible()

        # Convert: a few before/after frames first, then one second, which plays in the page
        page.click("nav.tabs >> text=Convert")
        page.select_option("select[name=input]", label=f"s1 (A): {s1_clips[0].name}")
        page.fill("input[name=duration]", "1")
        page.click("button[value=preview]")
        expect(page.locator(".previews img")).to_have_count(4, timeout=180_000)
        expect(page.locator("input[name=duration]")).to_have_value("1")  # the form keeps what was run
        page.click("button[value=full]")
        video = page.locator("#result-video")
        expect(video).to_be_visible(timeout=180_000)
        page.evaluate("() => { const v = document.getElementById('result-video'); v.muted = true; return v.play(); }")
        wait_until(page, "document.getElementById('result-video').currentTime > 0.2", 30)
        assert page.evaluate("document.getElementById('result-video').duration") > 0.5
        page.screenshot(path=screenshots / "4-convert.png", full_page=True)
        download_url = page.get_attribute("#download", "href")
        assert download_url and download_url.endswith("?download=1")

        # Verify: the output says synthetic, the input does not
        output = next((root / "demo" / "outputs").glob("*.mp4"))
        page.click("nav.tabs >> text=Verify")
        page.set_input_files("#verify-file", output)
        expect(page.locator(".verdict")).to_contain_text("SYNTHETIC", timeout=120_000)
        page.screenshot(path=screenshots / "5-verify.png", full_page=True)
        page.set_input_files("#verify-file", s1_clips[1])
        expect(page.locator(".verdict")).to_contain_text("no deepswap mark", timeout=120_000)
    assert not errors, errors
    assert not list((root / "demo" / "uploads" / "verify").iterdir())  # checked files are not kept


@pytest.mark.parametrize("host", ["127.0.0.1", "0.0.0.0"])
def test_the_printed_token_is_needed_on_loopback_and_off_it(browser, tmp_path: Path, host: str) -> None:
    page = browser.new_page()
    with running_ui(tmp_path, "--host", host) as server:
        url = server.url
        assert "?token=" in url
        local = re.sub(r"^http://[^/]+", f"http://127.0.0.1:{url.split(':')[2].split('/')[0]}", url)
        base = local.split("?")[0]
        assert page.goto(base).status == 401
        assert page.goto(base + "?token=wrong").status == 403
        entry = page.goto(local)
        assert entry.status == 200 and page.url == base
        assert page.goto(base).status == 200  # the token is now in an HttpOnly cookie
        assert page.evaluate("document.cookie") == ""


def test_a_face_s_mask_corrected_in_the_editor_and_the_mask_trained_further(browser, screenshots: Path, tmp_path: Path,
                                                                           trained_workspace: Path) -> None:
    import shutil

    import numpy as np

    from deepswap.faces import load_faceset

    root = tmp_path / "root"
    root.mkdir()
    shutil.copytree(trained_workspace, root / "ws")
    faces = load_faceset(root / "ws" / "a" / "faces")
    face = faces.ids()[0]
    before = faces.load_mask(face)
    page = browser.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on("console", lambda line: errors.append(line.text) if "Content Security Policy" in line.text else None)
    expect = playwright.expect
    with running_ui(root) as server:
        page.goto(server.url)
        faces_page = server.url.split("?")[0].rstrip("/") + "/w/ws/faces?person=a"
        page.goto(faces_page)
        page.locator(f'.tile[data-id="{face}"]').hover()
        page.locator(f'.tile[data-id="{face}"] .edit-mask').click()
        page.wait_for_url(f"**/faces/a/{face}/mask")
        wait_until(page, "document.getElementById('mask-editor').dataset.ready === '1'", 30)
        page.keyboard.press("l")  # what the learned mask says, then back to the face's own mask
        expect(page.locator("input[name=view][value=learned]")).to_be_checked()
        page.screenshot(path=screenshots / "6-mask-learned.png", full_page=True)
        page.keyboard.press("l")
        page.keyboard.press("e")  # erase: a stroke across the middle of the face
        box = page.locator("#mask-canvas").bounding_box()
        page.mouse.move(box["x"] + box["width"] * 0.3, box["y"] + box["height"] * 0.55)
        page.mouse.down()
        page.mouse.move(box["x"] + box["width"] * 0.7, box["y"] + box["height"] * 0.55, steps=8)
        page.mouse.up()
        page.keyboard.press("Control+s")
        expect(page.locator("#mask-state")).to_contain_text("Saved: 1 face(s)")
        page.screenshot(path=screenshots / "7-mask-editor.png", full_page=True)
        after = load_faceset(root / "ws" / "a" / "faces").load_mask(face)
        row = round(after.shape[0] * 0.55)
        middle = slice(round(after.shape[1] * 0.35), round(after.shape[1] * 0.65))
        assert np.all(before[row, middle] > 127) and np.all(after[row, middle] == 0)
        assert np.array_equal(after[:20], np.where(before[:20] >= 128, 255, 0))  # the rest kept, binarised

        page.fill("input[name=mask_steps]", "3")
        page.click("#mask-training button")
        expect(page.locator("#job .badge")).to_have_text("finished", timeout=180_000)
        expect(page.locator("#job")).to_contain_text("saved the learned mask at step")
        page.screenshot(path=screenshots / "8-mask-trained.png", full_page=True)
        page.wait_for_timeout(2000)  # the page reloads itself 300 ms after its job ends: a goto then is aborted
        page.goto(faces_page)
        expect(page.locator(f'.tile.corrected[data-id="{face}"]')).to_have_count(1)
        expect(page.locator("#corrected-count")).to_have_text("1")
        page.screenshot(path=screenshots / "9-faces-corrected.png")
    assert not errors, errors
