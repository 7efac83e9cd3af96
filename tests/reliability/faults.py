"""Tools of the fault-injection suite (tests/reliability/test_faults.py): synthetic valid traffic that
publishers in other processes can regenerate from an index, samples of a process's memory, files and
threads, fuzzed payloads that must each become a dead letter, and small file systems to fill or to turn
read-only."""

from __future__ import annotations

import errno
import json
import multiprocessing
import os
import random
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from multiprocessing.sharedctypes import Synchronized
from pathlib import Path

from devices import KINDS
from hub.mqtt import BrokerAddress, Publisher
from hub.topics import event_topic
from simulators.publishing import AckWindow
from tests.real_servers import require_binary
from tests.registry_builder import RegistryBuilder

# --- synthetic valid traffic ---------------------------------------------------------------------------

COMMUNITY = "faults"
# Kinds whose readings raise no alert by themselves (no SOS, no falling object, no lingering visitor), so
# a long run measures intake, not a growing alert table.
_QUIET_PAYLOADS: dict[str, Callable[[int], dict[str, object]]] = {
    "door_sensor": lambda round_: {"contact": "open" if round_ % 2 else "closed", "battery": 80},
    "motion_sensor": lambda round_: {"occupancy": bool(round_ % 2), "battery": 90},
}


@dataclass(frozen=True)
class SyntheticTraffic:
    """Message `i` is device `i % len(devices)`'s report number `i // len(devices)`, at `base_ts` plus that
    many ms: every index is a distinct (device, ts) key, so a publisher in any process can make message
    `i` and the test can name the keys of exactly the indices that were published. (Counting time per
    device, not per index, keeps a publisher that sends one device's messages only from running into the
    future.)"""

    devices: tuple[tuple[str, str], ...]  # (device id, kind)
    base_ts: int

    def message(self, i: int) -> tuple[str, bytes]:
        device, kind = self.devices[i % len(self.devices)]
        report = i // len(self.devices)
        payload = {**_QUIET_PAYLOADS[kind](report), "ts": self.base_ts + report}
        return event_topic(COMMUNITY, kind, device), json.dumps(payload).encode()

    def key(self, i: int) -> tuple[str, int]:
        return self.devices[i % len(self.devices)][0], self.base_ts + i // len(self.devices)


def synthetic_traffic(registry_path: Path, households: int) -> SyntheticTraffic:
    """A community of `households` homes with a door and a motion sensor each; writes its registry. The
    readings start a day in the past: a device would need 86 million reports to reach the present."""
    builder = (RegistryBuilder().community(COMMUNITY, "fault injection").compound("c1")
               .building("b1", floors=30).grid("g1"))
    for h in range(households):
        (builder.household(f"h{h}", unit=f"1-{h}").resident(f"r{h}", f"resident {h}")
         .device(f"door-{h}", "door_sensor").device(f"motion-{h}", "motion_sensor"))
    builder.dump(registry_path)
    devices = builder.build().devices
    base_ts = int((time.time() - 24 * 3600) * 1000)
    return SyntheticTraffic(tuple((d.id, d.kind) for d in devices), base_ts)


@dataclass(frozen=True)
class Stripe:
    """Indices `start + offset`, `start + offset + stride`, ...: one publisher process's share."""

    start: int
    offset: int
    stride: int

    def index(self, k: int) -> int:
        return self.start + self.offset + k * self.stride


def _publish_stripe(address: BrokerAddress, traffic: SyntheticTraffic, stripe: Stripe, *, rate: float,
                    until: float, limit: int, done: Synchronized[int]) -> None:
    """A publisher process: QoS 1 at `rate` msg/s (0: as fast as the broker acknowledges) until the wall
    clock reaches `until` or `limit` messages; `done` ends as the count published *and* acknowledged."""
    publisher = Publisher(address)
    publisher.start()
    window = AckWindow(2_000, timeout_s=120)
    started = time.monotonic()
    k = 0
    try:
        while k < limit and time.time() < until:
            topic, payload = traffic.message(stripe.index(k))
            window.add(publisher.publish(topic, payload))
            k += 1
            if rate and k % 16 == 0:
                ahead = started + k / rate - time.monotonic()
                if ahead > 0:
                    time.sleep(ahead)
        window.drain()
    finally:
        publisher.stop()
    done.value = k


@dataclass
class PublishRun:
    """Publisher processes under way; `wait()` gives the indices they published, all acknowledged."""

    processes: list[multiprocessing.process.BaseProcess]
    counts: list[Synchronized[int]]
    stripes: list[Stripe]

    def running(self) -> bool:
        return any(p.is_alive() for p in self.processes)

    def wait(self, timeout: float = 300) -> list[int]:
        for process in self.processes:
            process.join(timeout)
        stuck = [p for p in self.processes if p.is_alive()]
        for process in stuck:
            process.kill()
            process.join()
        assert not stuck, "a publisher process did not finish"
        failed = [p.exitcode for p in self.processes if p.exitcode != 0]
        assert not failed, f"a publisher process failed (exit codes {failed})"
        return [stripe.index(k) for stripe, count in zip(self.stripes, self.counts, strict=True)
                for k in range(count.value)]

    def stop(self) -> None:
        for process in self.processes:
            if process.is_alive():
                process.kill()
                process.join()


def start_publishing(address: BrokerAddress, traffic: SyntheticTraffic, *, start: int, processes: int,
                     rate: float = 0, duration_s: float, limit: int = 10**9) -> PublishRun:
    """Publish synthetic messages from index `start` on, from `processes` processes (spawned: the test
    process has threads, and a forked copy of paho's could hold a lock), for `duration_s` seconds at a
    total of `rate` msg/s (0: flat out) or until `limit` messages in total."""
    context = multiprocessing.get_context("spawn")
    until = time.time() + duration_s
    run = PublishRun([], [], [])
    for p in range(processes):
        stripe = Stripe(start, p, processes)
        done = context.Value("q", -1)
        share = limit // processes + (1 if p < limit % processes else 0)
        process = context.Process(
            target=_publish_stripe, name=f"publisher-{p}", daemon=True, args=(address, traffic, stripe),
            kwargs={"rate": rate / processes, "until": until, "limit": share, "done": done})
        process.start()
        run.processes.append(process)
        run.counts.append(done)
        run.stripes.append(stripe)
    return run


# --- process samples -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class ProcessSample:
    at: float  # monotonic seconds
    rss_kb: int
    open_files: int
    threads: int


def sample_process(pid: int) -> ProcessSample:
    """Resident memory (VmRSS), open file descriptors and threads of a live process, from /proc."""
    status = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines()
                  if ":" in line)
    return ProcessSample(time.monotonic(), int(status["VmRSS"].split()[0]),
                         len(os.listdir(f"/proc/{pid}/fd")), int(status["Threads"]))


class Sampler(threading.Thread):
    """Samples a process every `interval_s` until stopped (and once more then)."""

    def __init__(self, pid: int, interval_s: float) -> None:
        super().__init__(name="process-sampler", daemon=True)
        self._pid = pid
        self._interval_s = interval_s
        self._stopping = threading.Event()
        self.samples: list[ProcessSample] = []

    def run(self) -> None:
        while True:
            self.samples.append(sample_process(self._pid))
            if self._stopping.wait(self._interval_s):
                break
        self.samples.append(sample_process(self._pid))

    def stop(self) -> list[ProcessSample]:
        self._stopping.set()
        self.join(30)
        return self.samples


# --- fuzzed payloads -----------------------------------------------------------------------------------

FUZZ_KINDS = ("random_bytes", "truncated_json", "huge_number", "deep_nesting", "one_megabyte",
              "wrong_types", "unicode_oddity", "junk_topic")

_WRONG_TYPES: dict[str, dict[str, object]] = {
    "door_sensor": {"contact": 1}, "motion_sensor": {"occupancy": "maybe"},
    "wristband": {"steps": "many"}, "smart_peephole": {"event": ["lingering"]},
    "high_altitude_camera": {"type": {"falling": "object"}},
}
_ODD_TEXT = ("\u202eneqo", "\ud800", "o\u0301pen", "\U0001f6aa", "\ufeffopen", "\u0000", "ｏｐｅｎ", "\u200b")


@dataclass(frozen=True)
class Fuzzed:
    kind: str
    topic: str
    payload: bytes


def fuzzed_message(rng: random.Random, devices: list[tuple[str, str, str]], now_ms: int,
                   kind: str | None = None) -> Fuzzed:
    """One bad message of `kind` (else a random kind; a 1 MB payload only when asked for by name, the
    caller rations them). `devices` are (topic, kind, device id) of registered devices: a bad payload on a
    good topic must be refused for what it holds, not for where it came."""
    if kind is None:
        kind = rng.choice([k for k in FUZZ_KINDS if k != "one_megabyte"])
    topic, device_kind, _ = rng.choice(devices)
    native = topic.startswith("sc/")
    good = {**KINDS[device_kind].example, "ts": now_ms - rng.randrange(3_600_000)}
    if not native:  # the Zigbee2MQTT forms carry no ts; give them a native topic for structured faults
        native_topics = [d for d in devices if d[0].startswith("sc/")]
        if kind not in ("random_bytes", "truncated_json", "deep_nesting", "one_megabyte", "junk_topic"):
            topic, device_kind, _ = rng.choice(native_topics)
            good = {**KINDS[device_kind].example, "ts": now_ms - rng.randrange(3_600_000)}
    payload: bytes
    if kind == "random_bytes":
        # 0xff never occurs in UTF-8, so these bytes are never text, let alone JSON.
        payload = b"\xff" + rng.randbytes(rng.randrange(0, 300))
    elif kind == "truncated_json":
        whole = json.dumps(good).encode()
        payload = whole[: rng.randrange(1, len(whole) - 1)]
    elif kind == "huge_number":
        number = rng.choice(["1" + "0" * rng.randrange(400, 5000), "1e999", "-1e999", str(2**64 + 1)])
        # ts, or a battery percentage (bounded 0-100): fields whose every huge value is out of range.
        field = rng.choice(["ts", "battery"] if "battery" in good else ["ts"])
        body = json.dumps({k: v for k, v in good.items() if k != field})
        payload = (body[:-1] + f', "{field}": {number}}}').encode()
    elif kind == "deep_nesting":
        depth = rng.randrange(500, 8_000)  # under the hub's 64 KB limit: the parser must cope with it
        payload = ("[" * depth + "]" * depth).encode() if rng.random() < 0.5 else \
            ('{"ts": ' + '{"a": ' * depth + "1" + "}" * depth + "}").encode()
    elif kind == "one_megabyte":
        payload = json.dumps({**good, "pad": "x" * (1024 * 1024)}).encode()
    elif kind == "wrong_types":
        payload = json.dumps({**good, **_WRONG_TYPES[device_kind]}).encode()
    elif kind == "unicode_oddity":
        # A registered device's readings with a text where its enum or number belongs.
        field = next(k for k, v in good.items() if k != "ts" and not isinstance(v, bool | list | dict))
        payload = json.dumps({**good, field: rng.choice(_ODD_TEXT)}).encode()
    else:  # junk_topic: a valid reading on a topic the hub subscribes to but that names nothing it knows
        topic = rng.choice([
            f"sc/{COMMUNITY}//nobody-{rng.randrange(10**6)}/event",
            f"sc/{COMMUNITY}/door_sensor/ghost-{rng.randrange(10**6)}/event",
            f"zigbee2mqtt/c1/ghost {rng.choice(_ODD_TEXT[2:4])} {rng.randrange(10**6)}",
        ])
        payload = json.dumps(good).encode()
    return Fuzzed(kind, topic, payload)


# --- small file systems --------------------------------------------------------------------------------

def _run(*command: str) -> None:
    subprocess.run(command, check=True, capture_output=True, text=True)


@contextmanager
def small_tmpfs(path: Path, size_mb: int) -> Iterator[Path]:
    """A tmpfs of `size_mb` MB mounted at `path` (needs root), unmounted afterwards whatever happens."""
    path.mkdir(parents=True, exist_ok=True)
    _run("mount", "-t", "tmpfs", "-o", f"size={size_mb}m,mode=0755", "tmpfs", str(path))
    try:
        yield path
    finally:
        subprocess.run(["umount", "--lazy", str(path)], check=False, capture_output=True)


def fill(directory: Path) -> Path:
    """Write a ballast file until the file system says ENOSPC; remove it and the space returns."""
    ballast = directory / "ballast"
    chunk = b"\0" * (1 << 20)
    with ballast.open("wb", buffering=0) as out:
        for size in (1 << 20, 4096, 1):
            try:
                while True:
                    out.write(chunk[:size])
            except OSError as exc:
                if exc.errno != errno.ENOSPC:
                    raise
    return ballast


@dataclass
class LoopExt4:
    """An ext4 file system in an image file on a loop device, mounted with errors=remount-ro, so an error
    makes the kernel turn it read-only under its writers — as a failing disk does."""

    image: Path
    mountpoint: Path

    def mount(self) -> None:
        self.mountpoint.mkdir(parents=True, exist_ok=True)
        _run("mount", "-o", "loop,errors=remount-ro", str(self.image), str(self.mountpoint))

    @property
    def device(self) -> str:
        return subprocess.run(["findmnt", "-no", "SOURCE", str(self.mountpoint)], check=True,
                              capture_output=True, text=True).stdout.strip()

    def read_only(self) -> bool:
        options = subprocess.run(["findmnt", "-no", "OPTIONS", str(self.mountpoint)], check=True,
                                 capture_output=True, text=True).stdout
        return "ro" in options.strip().split(",") or "emergency_ro" in options

    def trigger_error(self) -> None:
        """ext4's own error path (as on an I/O error): with errors=remount-ro it goes read-only at once."""
        Path(f"/sys/fs/ext4/{Path(self.device).name}/trigger_fs_error").write_text("fault injection\n")

    def repair_and_remount(self) -> None:
        """What an operator does: unmount, fsck, mount again (a kernel read-only remount is final)."""
        _run("umount", str(self.mountpoint))
        subprocess.run(["e2fsck", "-fy", str(self.image)], check=False, capture_output=True)
        self.mount()


@contextmanager
def loop_ext4(image: Path, mountpoint: Path, size_mb: int) -> Iterator[LoopExt4]:
    """A fresh ext4 in `image`, mounted at `mountpoint` (needs root and loop devices); always unmounted."""
    with image.open("wb") as out:
        out.truncate(size_mb << 20)
    _run("mkfs.ext4", "-q", "-F", str(image))
    fs = LoopExt4(image, mountpoint)
    fs.mount()
    try:
        yield fs
    finally:
        # --detach-loop frees the loop device too; lazy, so a straggling reader cannot keep it mounted.
        subprocess.run(["umount", "--lazy", "--detach-loop", str(mountpoint)], check=False,
                       capture_output=True)


# --- overload through mosquitto_pub ----------------------------------------------------------------------

def publish_through_mosquitto_pub(port: int, traffic: SyntheticTraffic, *, start: int, devices: int,
                                  rate: float, duration_s: float, meanwhile: Callable[[], None]) -> list[int]:
    """Publish at `rate` msg/s in total for `duration_s` through one `mosquitto_pub -l` (C, QoS 1) per
    device: a Python publisher tops out far below what overloading the hub takes on a small machine. Each
    process gets one device's messages (indices `start + p`, `start + p + len(traffic.devices)`, ...) fed
    line by line on time; it exits 0 once the broker acknowledged every line. `meanwhile` runs between
    feeds (sampling). Returns the indices published."""
    binary = require_binary("mosquitto_pub", "/usr/bin/mosquitto_pub")
    stripes = [Stripe(start, p, len(traffic.devices)) for p in range(devices)]
    processes = [
        subprocess.Popen([binary, "-h", "127.0.0.1", "-p", str(port), "-V", "5", "-q", "1", "-M", "1000",
                          "-l", "-t", traffic.message(stripe.index(0))[0]],
                         stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        for stripe in stripes]
    fed = [0] * devices
    try:
        started = time.monotonic()
        while (elapsed := time.monotonic() - started) < duration_s:
            due = int(rate * elapsed / devices)
            for p, (process, stripe) in enumerate(zip(processes, stripes, strict=True)):
                assert process.stdin is not None
                process.stdin.write(b"".join(traffic.message(stripe.index(k))[1] + b"\n"
                                             for k in range(fed[p], due)))
                process.stdin.flush()
                fed[p] = max(fed[p], due)
            meanwhile()
            time.sleep(0.05)
        for process in processes:  # closes its stdin: mosquitto_pub finishes its in-flight messages
            _, errors = process.communicate(timeout=300)
            assert process.returncode == 0, f"mosquitto_pub failed: {errors.decode(errors='replace')}"
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait()
    return [stripe.index(k) for stripe, count in zip(stripes, fed, strict=True) for k in range(count)]
