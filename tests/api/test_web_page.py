"""The caregiver page in a real headless Chromium (Debian's `chromium`, driven by Playwright), served by the
real hub subprocess, with alerts raised by real wristband messages through a real Mosquitto."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, ConsoleMessage, Locator, Page, expect, sync_playwright

from detectors.severity import SEVERITIES
from devices.wristband import WristbandEvent
from hub.alerts.messages import LANGUAGES, words
from hub.alerts.model import ALERT_KINDS, OUTCOMES
from hub.api.tokens import Role
from hub.mqtt import Publisher
from hub.topics import event_topic
from tests.alerts.receivers import Mailbox
from tests.api.support import make_token
from tests.conftest import StartHub
from tests.real_servers import HubProcess, Mosquitto, wait_until
from tests.registry_builder import RegistryBuilder

CHROMIUM = Path("/usr/bin/chromium")
# Without the background-networking flags Chromium keeps dialling Google's services, which a closed
# network refuses; QUIC and the component updater likewise.
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
# Long enough for a hub to evaluate a message, or for the page's back-off to reach a restarted hub.
ALERT_WAIT_MS = 20_000


@pytest.fixture(scope="module")
def chromium() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium and chromium-driver "
                    "(`make test-deps` does)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def open_page(chromium: Browser) -> Iterator[Any]:
    """Open a page in a fresh browser context (its own sessionStorage) with a given locale. An uncaught
    exception in the page fails the test; console errors are only printed, as the refused requests a
    test provokes on purpose (a bad token, a stopped hub) are logged there too."""
    contexts = []
    errors: list[str] = []

    def open_in(locale: str) -> Page:
        context = chromium.new_context(locale=locale, viewport={"width": 390, "height": 844})
        contexts.append(context)
        page = context.new_page()
        page.on("pageerror", lambda error: errors.append(f"{error}"))
        page.on("console", _log_console)
        return page

    yield open_in
    for context in contexts:
        context.close()
    assert not errors, f"the page threw: {errors}"


def _log_console(message: ConsoleMessage) -> None:
    if message.type == "error":
        print(f"browser console: {message.text}")


@pytest.fixture
def caring_registry(tmp_path: Path) -> Path:
    """Two homes, each with a resident wearing a wristband and one family caregiver of their own."""
    return (RegistryBuilder().community("sunshine", "阳光社区").compound("c1")
            .building("b1", name="1号楼", floors=18)
            .grid("g1").household("h101", unit="1-101").household("h102", unit="1-102")
            .caregiver("cg-li", "李女士", "family").caregiver("cg-zhang", "张先生", "family")
            .resident("r1", "王奶奶", household="h101", caregivers={"cg-li": 1})
            .resident("r2", "赵爷爷", household="h102", caregivers={"cg-zhang": 1})
            .device("band-1", "wristband", resident="r1").device("band-2", "wristband", resident="r2")
            .dump(tmp_path / "registry.yaml"))


def start_serving_hub(start_hub: StartHub, registry: Path, env: dict[str, str] | None = None) -> HubProcess:
    hub = start_hub(registry, env)
    wait_for_api(hub)
    return hub


def wait_for_api(hub: HubProcess) -> None:
    def healthy() -> bool:
        try:
            return httpx.get(f"{hub.http_url}/health", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    wait_until(healthy, 20, what=f"the hub's API on {hub.http_url}")


def create_token(hub: HubProcess, caregiver: str, name: str) -> str:
    """`hub tokens create` with the hub's environment, so it writes the running hub's store."""
    created = subprocess.run(
        [sys.executable, "-m", "hub", "tokens", "create", "--name", name, "--role", "caregiver",
         "--caregiver", caregiver, "--registry", str(hub.registry)],
        env=hub.env, capture_output=True, text=True, timeout=60, check=False,
    )
    assert created.returncode == 0, created.stderr
    return created.stdout.strip()


def api(hub: HubProcess, token: str, path: str) -> Any:
    response = httpx.get(f"{hub.http_url}/api/v1{path}", headers={"Authorization": f"Bearer {token}"},
                         timeout=10)
    response.raise_for_status()
    return response.json()


def press(mosquitto: Mosquitto, band: str, *, sos: bool = True, fall: bool | None = None) -> None:
    """A wristband's SOS press (or a fall), built from the device model and published as the band does."""
    payload = WristbandEvent(ts=int(time.time() * 1000), battery=80, sos=sos or None, fall=fall)
    publisher = Publisher(mosquitto.address)
    publisher.start()
    try:
        message = publisher.publish(event_topic("sunshine", "wristband", band),
                                    payload.model_dump_json(exclude_none=True))
        assert message.wait(10), "the broker did not acknowledge the press"
    finally:
        publisher.stop()


def sign_in(page: Page, hub: HubProcess, token: str) -> None:
    page.goto(hub.http_url)
    page.locator("#token").fill(token)
    page.locator("#login-form button[type=submit]").click()
    expect(page.locator("#signed-in")).to_be_visible()
    expect(page.locator("#login")).to_be_hidden()


def alert_card(page: Page, kind: str) -> Locator:
    return page.locator(f"#alerts li[data-kind='{kind}']")


def test_caregiver_sees_a_pressed_sos_live_and_acknowledges_it(
    start_hub: StartHub, caring_registry: Path, mosquitto: Mosquitto, open_page: Any
) -> None:
    # An acknowledged SOS is overdue 3 s later (not 2 h), so its history can say so within the test.
    hub = start_serving_hub(start_hub, caring_registry, {"HUB_ALERTS_RESOLVE_DEADLINE_CRITICAL_S": "3",
                                                         "HUB_ALERTS_TICK_INTERVAL_S": "0.5"})
    li = create_token(hub, "cg-li", "李女士")
    zhang = create_token(hub, "cg-zhang", "张先生")
    # "We found her on the floor at 10:00 and no alert came": her morning alerts are tightened.
    missed = httpx.post(f"{hub.http_url}/api/v1/residents/r1/missed-incidents",
                        json={"at": "2026-11-23T10:00:00+08:00", "note": "在地上"},
                        headers={"Authorization": f"Bearer {li}"}, timeout=10)
    assert missed.status_code == 201, missed.text
    page = open_page("zh-CN")
    sign_in(page, hub, li)
    expect(page.locator("#whoami")).to_have_text("当前用户：李女士")
    residents = page.locator("#residents > li")
    expect(residents).to_have_count(1)  # her own resident only, not 赵爷爷
    expect(residents.first.locator(".resident-name")).to_have_text("王奶奶")
    expect(residents.first.locator(".where")).to_have_text("1号楼 · 住户 1-101")
    expect(residents.first.locator(".where")).to_have_attribute("title", "building: b1\nhousehold: h101")
    expect(residents.first.locator(".presence")).to_have_text("在家")
    # What verdicts changed in her alerting, in words; the ids on hover.
    sensitivity = residents.first.locator(".sensitivity")
    expect(sensitivity.locator("summary")).to_have_text("提醒灵敏度调整（1）")
    sensitivity.locator("summary").click()
    change = sensitivity.locator("li.sensitivity-change")
    expect(change).to_contain_text("报告漏报（")
    expect(change).to_contain_text("上午（6–12 时）提醒收紧，1.00 → 1.25 · 李女士 · 备注：在地上")
    expect(change).to_have_attribute("title", f"change: {missed.json()['id']}\nby: cg-li")
    expect(page.locator("#no-alerts")).to_be_visible()
    page.evaluate("window.sameDocument = true")  # gone if the page reloads or navigates

    # Another caregiver's resident presses first: that alert is raised (张先生 sees it), but it is not hers.
    press(mosquitto, "band-2")
    wait_until(lambda: [a for a in api(hub, zhang, "/alerts?state=open") if a["resident"] == "r2"], 20,
               what="赵爷爷's SOS alert")
    press(mosquitto, "band-1")

    card = alert_card(page, "sos")
    expect(card).to_have_count(1, timeout=ALERT_WAIT_MS)
    # The stream is in order: had 赵爷爷's alert been sent to her, it would be on the page by now.
    expect(page.locator("#alerts > li")).to_have_count(1)
    assert page.evaluate("window.sameDocument") is True, "the page reloaded instead of updating live"
    expect(card.locator(".kind")).to_have_text("SOS 求助")
    expect(card.locator(".severity")).to_have_text("紧急")
    expect(card.locator(".who")).to_have_text("王奶奶")
    expect(card.locator(".state")).to_have_text("待确认")
    expect(card.locator(".evidence")).to_contain_text("按下时间")
    expect(card.locator("time")).to_have_text("刚刚")
    expect(page.locator("#announcer")).to_have_text("新告警：紧急 SOS 求助 · 王奶奶")
    alert_id = int(card.get_attribute("data-alert-id") or "0")

    card.get_by_role("button", name="确认").click()
    expect(card).to_have_attribute("data-state", "acknowledged")
    expect(card.locator(".state")).to_have_text("已确认")
    expect(card.get_by_role("button", name="确认")).to_be_hidden()
    # Names where people read, the ids on hover (and in the API beside the names).
    expect(card.locator(".handled")).to_have_text("李女士 已确认")
    expect(card.locator(".handled")).to_have_attribute("title", "acknowledged_by: cg-li")
    expect(card.locator(".where")).to_have_text("1号楼 · 住户 1-101")
    expect(card.locator(".where")).to_have_attribute("title", "building: b1\nhousehold: h101")
    expect(card.locator(".who")).to_have_attribute("title", "resident: r1\ndevice: band-1\nsubject: r1")

    alert = api(hub, li, f"/alerts/{alert_id}")
    assert (alert["resident"], alert["kind"], alert["state"]) == ("r1", "sos", "acknowledged")
    assert alert["acknowledged_by"] == "cg-li"
    assert alert["names"] == {"resident": "王奶奶", "unit": "1-101", "building": "1号楼",
                              "community": "阳光社区", "assigned_to": None, "acknowledged_by": "李女士",
                              "resolved_by": None, "timezone": "Asia/Shanghai"}

    # Times in the community's zone, saying so, on the page and on the command line alike (whatever the
    # machine's own zone: the hub's tests run in UTC).
    page_time = card.locator("time").get_attribute("title") or ""
    assert page_time.endswith(" UTC+8"), page_time
    shown = subprocess.run([sys.executable, "-m", "hub", "alerts", "show", str(alert_id)],
                           env={**hub.env, "HUB_REGISTRY_PATH": str(hub.registry), "TZ": "UTC",
                                "COLUMNS": "200"},
                           capture_output=True, text=True, timeout=60, check=True).stdout
    last_seen = next(line for line in shown.splitlines() if "last seen" in line).split()[-3:]
    assert last_seen[1][:5] in page_time and last_seen[2] == "UTC+8", (last_seen, page_time)

    # The alert's story in words, unfolded, and following it live: a second press is news to her, she
    # takes it on herself, and, unresolved past its deadline, it is overdue.
    card.locator(".history-summary").click()
    history = card.locator(".history")
    expect(history.locator("li").first).to_contain_text("告警产生")
    expect(history).to_contain_text("李女士 已确认")
    press(mosquitto, "band-1")
    expect(history).to_contain_text("新情况（共 2 次），已告知已通知的人", timeout=ALERT_WAIT_MS)
    assigned = httpx.post(f"{hub.http_url}/api/v1/alerts/{alert_id}/assign", json={"to": "cg-li"},
                          headers={"Authorization": f"Bearer {li}"}, timeout=10)
    assert assigned.status_code == 200, assigned.text
    expect(history.locator("li.action-assigned")).to_contain_text("李女士 指派给 李女士")
    expect(history.locator("li.action-assigned")).to_have_attribute(
        "title", "actor: cg-li\nrole: caregiver\nto: cg-li")
    expect(history.locator("li.action-overdue")).to_contain_text(
        "李女士 已确认，但超过处理时限仍未结案：已通知第 1 级 李女士 跟进", timeout=ALERT_WAIT_MS)
    expect(history).not_to_contain_text("cg-li")
    page.get_by_role("button", name="English").click()
    expect(history.locator("li.action-repeated")).to_contain_text("New incident (2 times)")
    assert page.evaluate("window.sameDocument") is True


def test_the_page_opened_from_a_notifications_link_shows_that_alert(
    start_hub: StartHub, caring_registry: Path, mosquitto: Mosquitto, open_page: Any
) -> None:
    hub = start_serving_hub(start_hub, caring_registry)
    li = create_token(hub, "cg-li", "李女士")
    press(mosquitto, "band-1")
    press(mosquitto, "band-1", sos=False, fall=True)
    press(mosquitto, "band-2")
    def both() -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = api(hub, li, "/alerts")
        return found if len(found) == 2 else []

    alerts = wait_until(both, 20, what="the SOS and the fall")
    (sos,) = [a["id"] for a in alerts if a["kind"] == "sos"]
    zhang = create_token(hub, "cg-zhang", "张先生")
    (other,) = [a["id"] for a in api(hub, zhang, "/alerts")]

    # The link in the message: the page signs in, then brings that alert forward among the others.
    page = open_page("zh-CN")
    page.goto(f"{hub.http_url}/#alert={sos}")
    page.locator("#token").fill(li)
    page.locator("#login-form button[type=submit]").click()
    linked = page.locator(f"#alerts li[data-alert-id='{sos}']")
    expect(linked).to_have_attribute("data-linked", "true", timeout=ALERT_WAIT_MS)
    expect(linked).to_be_focused()
    expect(linked).to_be_in_viewport()
    expect(page.locator("#alerts li[data-linked]")).to_have_count(1)
    expect(page.locator("#alerts > li")).to_have_count(2)

    # Resolved meanwhile: the page says how it ended; another caregiver's alert is not shown at all.
    resolved = httpx.post(f"{hub.http_url}/api/v1/alerts/{sos}/resolve", json={"outcome": "visited"},
                          headers={"Authorization": f"Bearer {li}"}, timeout=10)
    assert resolved.status_code == 200, resolved.text
    expect(page.locator(f"#alerts li[data-alert-id='{sos}']")).to_have_count(0, timeout=ALERT_WAIT_MS)
    page.evaluate(f"location.hash = '#alert={sos}x'")
    page.evaluate(f"location.hash = '#alert={sos}'")
    expect(page.locator("#linked-note")).to_have_text(f"告警 #{sos} 已由 cg-li 处理：已上门查看。")
    page.evaluate(f"location.hash = '#alert={other}'")
    expect(page.locator("#linked-note")).to_have_text(f"找不到告警 #{other}，或它不属于您照护的老人。")
    expect(page.locator("#alerts")).not_to_contain_text("赵爷爷")


def test_labels_switch_language_and_use_the_notifications_words(
    start_hub: StartHub, caring_registry: Path, mosquitto: Mosquitto, open_page: Any
) -> None:
    hub = start_serving_hub(start_hub, caring_registry)
    li = create_token(hub, "cg-li", "李女士")
    page = open_page("en-US")  # the default language follows the browser's
    page.goto(hub.http_url)
    expect(page.locator("html")).to_have_attribute("lang", "en")
    expect(page.get_by_label("Access token")).to_be_visible()
    page.get_by_label("Access token").fill("not-a-token")
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator("#login-error")).to_have_text(
        "That token is not valid or has expired. Please enter it again.")
    expect(page.locator("#signed-in")).to_be_hidden()

    sign_in(page, hub, li)
    press(mosquitto, "band-1")
    card = alert_card(page, "sos")
    expect(card.locator(".kind")).to_have_text("SOS call", timeout=ALERT_WAIT_MS)
    expect(page.locator("#alerts-heading")).to_contain_text("Open alerts")
    expect(card.get_by_role("button", name="Acknowledge")).to_be_visible()

    page.get_by_role("button", name="中文").click()
    expect(page.locator("html")).to_have_attribute("lang", "zh-CN")
    expect(page.locator("#alerts-heading")).to_contain_text("待处理告警")
    expect(page.locator("#residents-heading")).to_have_text("我照护的老人")
    expect(card.locator(".kind")).to_have_text("SOS 求助")
    expect(card.get_by_role("button", name="确认")).to_be_visible()
    expect(page.get_by_role("button", name="English")).to_be_visible()
    expect(page.get_by_role("button", name="退出登录")).to_be_visible()

    # A reload keeps both the session (sessionStorage) and the chosen language.
    page.reload()
    expect(alert_card(page, "sos").locator(".kind")).to_have_text("SOS 求助")
    expect(page.locator("#residents-heading")).to_have_text("我照护的老人")

    labels = page.evaluate("import('/static/labels.js').then(module => module.LABELS)")
    for language in LANGUAGES:  # the words of the notifications that link here
        assert labels[language]["kinds"] == words(language)["kinds"]
        assert labels[language]["severities"] == words(language)["severities"]
    for language in ("zh", "en"):
        assert set(labels[language]["kinds"]) == set(ALERT_KINDS)
        assert set(labels[language]["severities"]) == set(SEVERITIES)
        assert set(labels[language]["outcomes"]) == set(OUTCOMES)
    assert set(labels["zh"]) == set(labels["en"]), "a label missing in one language"

    page.get_by_role("button", name="退出登录").click()
    expect(page.locator("#login")).to_be_visible()
    assert page.evaluate("sessionStorage.getItem('hub.token')") is None


def test_page_rides_out_a_hub_restart_then_resolves_and_a_revoked_token_signs_out(
    start_hub: StartHub, caring_registry: Path, mosquitto: Mosquitto, open_page: Any
) -> None:
    hub = start_serving_hub(start_hub, caring_registry)
    li = create_token(hub, "cg-li", "李女士")
    page = open_page("zh-CN")
    sign_in(page, hub, li)
    press(mosquitto, "band-1")
    sos = alert_card(page, "sos")
    expect(sos).to_have_count(1, timeout=ALERT_WAIT_MS)
    page.evaluate("window.sameDocument = true")

    hub.stop()
    banner = page.get_by_role("alert").and_(page.locator("#banner"))
    expect(banner).to_be_visible(timeout=ALERT_WAIT_MS)
    expect(banner).to_contain_text("无法连接到服务器")
    press(mosquitto, "band-1", sos=False, fall=True)  # queued by the broker for the stopped hub

    hub.start()
    # Reconnected with back-off, the list read again: the fall raised after the restart is there.
    expect(alert_card(page, "fall")).to_have_count(1, timeout=ALERT_WAIT_MS)
    expect(banner).to_be_hidden()
    assert page.evaluate("window.sameDocument") is True

    resolve = sos.get_by_role("button", name="处理完成")
    sos.locator(".resolve-summary").click()
    resolve.click()
    expect(sos.locator(".card-error")).to_have_text("请先选择处理结果。")
    sos.get_by_label("处理结果").select_option("visited")
    sos.get_by_label("备注（可选）").fill("上门看过，老人平安")
    sos_id = int(sos.get_attribute("data-alert-id") or "0")
    resolve.click()
    expect(page.locator(f"#alerts li[data-alert-id='{sos_id}']")).to_have_count(0)
    resolved = api(hub, li, f"/alerts/{sos_id}")
    assert (resolved["state"], resolved["outcome"], resolved["resolved_by"], resolved["note"]) == (
        "resolved", "visited", "cg-li", "上门看过，老人平安")

    # Revoked while the page is open: its next request is refused, and it goes back to sign-in.
    listed = subprocess.run([sys.executable, "-m", "hub", "tokens", "list", "--json"], env=hub.env,
                            capture_output=True, text=True, timeout=60, check=True)
    (token_id,) = [json.loads(line)["id"] for line in listed.stdout.splitlines()]
    subprocess.run([sys.executable, "-m", "hub", "tokens", "revoke", token_id], env=hub.env,
                   capture_output=True, timeout=60, check=True)
    alert_card(page, "fall").get_by_role("button", name="确认").click()
    expect(page.locator("#login")).to_be_visible()
    expect(page.locator("#login-error")).to_have_text("登录已失效，请重新登录。")
    assert page.evaluate("sessionStorage.getItem('hub.token')") is None


def test_page_and_assets_are_served_with_their_types_and_nothing_else(
    start_hub: StartHub, caring_registry: Path
) -> None:
    hub = start_serving_hub(start_hub, caring_registry)
    page = httpx.get(f"{hub.http_url}/", timeout=10)
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert "default-src 'self'" in page.headers["content-security-policy"]
    for asset, media_type in (("app.js", "text/javascript"), ("labels.js", "text/javascript"),
                              ("style.css", "text/css")):
        response = httpx.get(f"{hub.http_url}/static/{asset}", timeout=10)
        assert response.status_code == 200, asset
        assert response.headers["content-type"].startswith(media_type), asset
    for missing in ("nothing.js", "..%2Froutes%2Fweb.py", ".hidden.js", "index.py"):
        assert httpx.get(f"{hub.http_url}/static/{missing}", timeout=10).status_code == 404, missing



def test_api_docs_render_with_no_network_beyond_the_hub(
    start_hub: StartHub, caring_registry: Path, chromium: Browser
) -> None:
    """/docs (Swagger UI) renders the hub's API from the hub's own files: every other request is refused,
    as on a community network closed to the internet."""
    hub = start_serving_hub(start_hub, caring_registry)
    context = chromium.new_context()
    elsewhere: list[str] = []

    def only_the_hub(route: Any) -> None:
        if route.request.url.startswith(hub.http_url + "/"):
            route.continue_()
        else:
            elsewhere.append(route.request.url)
            route.abort()

    try:
        context.route("**/*", only_the_hub)
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(f"{error}"))
        page.goto(f"{hub.http_url}/docs")
        title = page.locator(".swagger-ui .info .title")
        expect(title).to_contain_text("Smart-community hub", timeout=20_000)
        expect(page.locator(".opblock-summary-path[data-path='/api/v1/alerts']").first).to_be_visible()
    finally:
        context.close()
    assert not elsewhere, f"the docs page asked for more than the hub: {elsewhere}"
    assert not errors, f"the docs page threw: {errors}"


def test_a_grid_worker_files_a_report_on_the_page_and_the_family_is_mailed(
    start_hub: StartHub, mosquitto: Mosquitto, mailbox: Mailbox, open_page: Any, tmp_path: Path
) -> None:
    registry = (RegistryBuilder().community("sunshine", "阳光社区").compound("c1")
                .building("b1", name="1号楼").grid("g1").household("h101", unit="1-101")
                .caregiver("cg-li", "李女士", "family", notify=[mailbox.url("li@example.com")])
                .caregiver("cg-grid", "张网格员", "grid_worker")
                .resident("r1", "王奶奶", household="h101", caregivers={"cg-li": 1, "cg-grid": 2})
                .device("band-1", "wristband", resident="r1")
                .dump(tmp_path / "registry.yaml"))
    hub = start_serving_hub(start_hub, registry)
    grid = create_token(hub, "cg-grid", "张网格员")
    page = open_page("zh-CN")
    sign_in(page, hub, grid)
    expect(page.locator("#residents li")).to_have_count(1)

    page.get_by_text("上报情况").click()
    expect(page.get_by_label("关于")).to_have_value("resident:r1")
    page.get_by_label("类别").select_option(label="老人身体不适")
    page.get_by_role("button", name="提交上报").click()
    expect(page.locator("#report-error")).to_have_text("请写下看到的情况。")  # nothing sent without a note
    page.get_by_label("情况说明").fill("敲门没人应，邻居说昨晚听到响声")
    page.get_by_role("button", name="提交上报").click()
    expect(page.locator("#report-done")).to_contain_text("已上报，告警 #")
    expect(page.get_by_label("情况说明")).to_have_value("")

    card = alert_card(page, "report_resident_unwell")
    expect(card).to_have_count(1)
    expect(card.locator(".kind")).to_have_text("上报：老人身体不适")
    expect(card.locator(".severity")).to_have_text("紧急")
    expect(card.locator(".who")).to_have_text("王奶奶")
    card.get_by_text("处理经过").click()
    expect(card.locator(".history li")).to_contain_text(
        ["张网格员 上报 · 备注：敲门没人应，邻居说昨晚听到响声"])

    # The loop as for any alert: told by the directory (the family first), by e-mail.
    wait_until(lambda: mailbox.subjects_for("li@example.com"), 30, what="the family's e-mail")
    assert mailbox.subjects_for("li@example.com") == ["[紧急] 上报：老人身体不适 · 王奶奶 · 1-101"]
    (body,) = mailbox.bodies_for("li@example.com", "text/html")
    assert "张网格员" in body and "敲门没人应，邻居说昨晚听到响声" in body


def test_an_operator_reopens_a_resolved_alert_on_the_page_and_it_is_back_in_the_loop(
    start_hub: StartHub, caring_registry: Path, mosquitto: Mosquitto, open_page: Any
) -> None:
    hub = start_serving_hub(start_hub, caring_registry)
    supervisor = make_token(hub, "值班主管", Role.OPERATOR, communities=("sunshine",))
    li = create_token(hub, "cg-li", "李女士")
    press(mosquitto, "band-1")
    wait_until(lambda: api(hub, li, "/alerts?state=open"), 20, what="the SOS alert")
    (alert,) = api(hub, li, "/alerts?state=open")
    resolved = httpx.post(f"{hub.http_url}/api/v1/alerts/{alert['id']}/resolve",
                          json={"outcome": "resident_ok"}, headers={"Authorization": f"Bearer {li}"},
                          timeout=10)
    assert resolved.status_code == 200

    page = open_page("zh-CN")
    sign_in(page, hub, supervisor)
    item = page.locator(f"#resolved-alerts li[data-alert-id='{alert['id']}']")
    expect(item).to_contain_text("SOS 求助 · 王奶奶 · 老人平安（李女士）")
    item.get_by_role("button", name="重新打开").click()
    expect(item.locator(".card-error")).to_have_text("请写下重新打开的原因。")
    item.get_by_label("重新打开的原因").fill("电话回访没人接")
    item.get_by_role("button", name="重新打开").click()

    card = alert_card(page, "sos")
    expect(card).to_have_attribute("data-state", "open")
    expect(card.locator(".handled")).to_have_text("已重新打开：电话回访没人接")
    expect(item).to_have_count(0)
    card.get_by_text("处理经过").click()
    expect(card.locator(".history li[data-action='reopened']")).to_contain_text(
        "值班主管 重新打开 · 备注：电话回访没人接")

    # The caregiver does not get the reopen section: her token may not reopen.
    other = open_page("zh-CN")
    sign_in(other, hub, li)
    expect(alert_card(other, "sos")).to_have_attribute("data-state", "open")
    expect(other.locator("#resolved")).to_be_hidden()
def test_a_grid_worker_records_a_visit_with_the_phones_location(
    start_hub: StartHub, tmp_path: Path, chromium: Browser
) -> None:
    registry = (RegistryBuilder().community("sunshine", "阳光社区").compound("c1")
                .building("b1", name="1号楼").grid("g1", workers=["cg-grid"]).household("h101", unit="1-101")
                .caregiver("cg-grid", "张网格员", "grid_worker")
                .resident("r1", "王奶奶", household="h101", flags=["独居老人"])
                .dump(tmp_path / "registry.yaml"))
    hub = start_serving_hub(start_hub, registry)
    worker = create_token(hub, "cg-grid", "张网格员")
    # The phone allows the page its location: the worker ticks the box and the visit carries it.
    context = chromium.new_context(locale="zh-CN", viewport={"width": 390, "height": 844},
                                   geolocation={"latitude": 31.2304, "longitude": 121.4737},
                                   permissions=["geolocation"])
    try:
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(f"{error}"))
        sign_in(page, hub, worker)
        card = page.locator("#visits li.visit")
        expect(card.locator(".who")).to_have_text("王奶奶", timeout=ALERT_WAIT_MS)
        expect(card.locator(".where")).to_have_text("1号楼 · 住户 1-101")
        expect(card.locator(".state")).to_have_text("待走访")
        expect(page.locator("#visits-heading")).to_contain_text("巡查走访")
        (planned,) = api(hub, worker, "/visits")
        card.locator(".resolve-summary").click()
        card.get_by_label("走访结果").select_option("concern")
        card.get_by_label("备注（可选）").fill("腿脚不便，需送餐")
        card.get_by_label("附上我当前的位置").check()
        card.get_by_role("button", name="保存走访记录").click()
        expect(page.locator("#announcer")).to_have_text("已登记对 王奶奶 的走访。")
        done = [v for v in api(hub, worker, "/visits?status=done") if v["id"] == planned["id"]]
        assert [(v["outcome"], v["note"], v["resident_seen"], v["lat"], v["lon"], v["recorded_by"])
                for v in done] == [("concern", "腿脚不便，需送餐", True, 31.2304, 121.4737, "cg-grid")]
        # The card now shows the next visit, planned a week from this one.
        (following,) = api(hub, worker, "/visits?status=scheduled")
        expect(page.locator(f"#visits li[data-visit-id='{following['id']}']")).to_be_visible()
        page.get_by_role("button", name="English").click()
        expect(page.locator("#visits li.visit .state")).to_have_text("Due")
        assert not errors, f"the page threw: {errors}"
    finally:
        context.close()
