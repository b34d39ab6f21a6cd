"""The clock's logic, checked on the CPU with a fake asynchronous device."""

import pytest

from perf_core.measure import clock


class FakeDevice:
    """Launches return at once and queue work; only sync() lets device time pass."""

    def __init__(self, seconds_per_call: float) -> None:
        self.now = 0.0
        self.pending = 0.0
        self.syncs = 0
        self.seconds_per_call = seconds_per_call

    def launch(self) -> None:
        self.now += 1e-6  # the host-side launch cost
        self.pending += self.seconds_per_call

    def sync(self) -> None:
        self.syncs += 1
        self.now += self.pending
        self.pending = 0.0

    def clock(self) -> float:
        return self.now


def run_round(timer, fn, iterations: int) -> float:
    """What pytest-benchmark's runner does: read the timer, call fn `iterations` times, read again."""
    start = timer()
    for _ in range(iterations):
        fn()
    return timer() - start


def test_unsynchronized_host_clock_sees_only_the_launches():
    device = FakeDevice(seconds_per_call=1e-3)
    assert run_round(device.clock, device.launch, 100) == pytest.approx(100e-6)


def test_synchronized_timer_sees_the_device_work_and_syncs_once_per_round_boundary():
    device = FakeDevice(seconds_per_call=1e-3)
    timer = clock.synchronized_timer(device.sync, device.clock)
    assert run_round(timer, device.launch, 100) == pytest.approx(100 * 1e-3 + 100e-6)
    assert device.syncs == 2  # not one per call: back-to-back calls keep the device busy


def test_isolated_latency_syncs_around_every_call():
    device = FakeDevice(seconds_per_call=1e-3)
    latency = clock.isolated_latency_s(device.launch, device.sync, calls=10, clock=device.clock)
    assert latency == pytest.approx(1e-3 + 1e-6)
    assert device.syncs == 20


def test_cpu_timer_is_the_plain_host_clock():
    import time

    assert clock.timer_for("cpu") is time.perf_counter


def test_peaks_are_measured_and_positive_on_the_cpu():
    peaks = clock.measure_peaks("cpu", "float32")
    assert peaks.flops_per_s > 1e8 and peaks.bytes_per_s > 1e8
    assert set(peaks.as_dict()) == {
        "peak_flops_per_s",
        "copy_bytes_per_s",
        "peak_dtype",
        "peak_gemm",
        "peak_bandwidth_bytes",
    }


def test_peaks_are_the_best_over_the_products_and_sizes_given_and_say_which():
    given = [(64, 32, 48), (16, 256, 8)]
    peaks = clock.measure_peaks("cpu", "float32", gemms=given, sizes=[4096, 65536], repeats=2)
    assert peaks.gemm in {(512, 512, 512), *given}
    assert peaks.bandwidth_bytes in {4096, 65536}  # the working sets given, not the large buffer
    assert peaks.as_dict()["peak_gemm"] == list(peaks.gemm)


class SleepyDevice(FakeDevice):
    """A FakeDevice whose host can also sleep: sleeping moves the clock, queues nothing."""

    def __init__(self, seconds_per_call: float) -> None:
        super().__init__(seconds_per_call)
        self.slept: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def test_resting_timer_rests_the_card_but_no_round_holds_the_rest():
    device = SleepyDevice(seconds_per_call=1e-3)
    timer = clock.RestingTimer(device.sync, rest=1.0, burst_s=0.01, clock=device.clock, sleep=device.sleep)
    rounds = [run_round(timer, device.launch, 3) for _ in range(20)]
    # each round is its three calls and launches, whichever end of it a rest fell at
    assert rounds == pytest.approx([3 * 1e-3 + 3e-6] * 20)
    assert device.slept, "20 rounds of 3 ms are past a 10 ms burst: the card must have rested"
    assert sum(device.slept) == pytest.approx(timer.rested_s)
    # about as long resting as working (rest=1.0), measured on the device's own clock
    assert sum(device.slept) == pytest.approx(sum(rounds), rel=0.35)


def test_resting_timer_counts_at_most_max_work_after_a_long_gap():
    device = SleepyDevice(seconds_per_call=1e-3)
    timer = clock.RestingTimer(device.sync, rest=2.0, burst_s=0.01, clock=device.clock, sleep=device.sleep)
    timer()
    device.now += 30.0  # a benchmark compiling: no work to rest from
    timer()
    assert device.slept == [pytest.approx(2.0 * clock.MAX_WORK_S)]


def test_timer_for_cuda_rests_only_when_asked(monkeypatch):
    monkeypatch.setattr(clock.torch.cuda, "synchronize", lambda: None)
    assert isinstance(clock.timer_for("cuda", rest=1.0), clock.RestingTimer)
    assert not isinstance(clock.timer_for("cuda"), clock.RestingTimer)


class TwoGpuNvml:
    """pynvml's GPU listing: NVML numbers the cards physically, whatever CUDA_VISIBLE_DEVICES says."""

    def __init__(self, uuids: list) -> None:
        self.uuids = uuids

    def nvmlInit(self) -> None:
        pass

    def nvmlDeviceGetCount(self) -> int:
        return len(self.uuids)

    def nvmlDeviceGetHandleByIndex(self, index: int) -> str:
        return f"card{index}"

    def nvmlDeviceGetUUID(self, handle: str):
        return self.uuids[int(handle.removeprefix("card"))]


class Properties:
    def __init__(self, uuid: str) -> None:
        self.uuid = uuid


def torch_sees(monkeypatch, uuids: list[str], current: int) -> None:
    """torch's CUDA devices (bare UUIDs, as torch prints them), `current` the one in use."""
    monkeypatch.setattr(clock.torch.cuda, "current_device", lambda: current)
    monkeypatch.setattr(clock.torch.cuda, "get_device_properties", lambda index: Properties(uuids[index]))


def test_the_clocks_are_read_from_the_gpu_torch_runs_on_matched_by_uuid(monkeypatch):
    a, b = "5e1a0c2b-0000-4000-8000-00000000000a", "5e1a0c2b-0000-4000-8000-00000000000b"
    # CUDA_VISIBLE_DEVICES=1,0: torch's device 0 is NVML's card 1 (NVML spells it "GPU-...", older pynvml as bytes).
    nvml = TwoGpuNvml([f"GPU-{a}", f"GPU-{b}".encode()])
    torch_sees(monkeypatch, [b, a], current=0)
    assert clock.current_gpu(nvml) == (1, f"GPU-{b}")
    torch_sees(monkeypatch, [b, a], current=1)
    assert clock.current_gpu(nvml) == (0, f"GPU-{a}")
    sampler = clock.ClockSampler(nvml, clock.current_gpu(nvml)[0])
    assert sampler.handle == "card0"


def test_a_gpu_nvml_does_not_list_has_no_index_and_no_clocks(monkeypatch):
    torch_sees(monkeypatch, ["5e1a0c2b-0000-4000-8000-00000000000c"], current=0)
    nvml = TwoGpuNvml(["GPU-5e1a0c2b-0000-4000-8000-00000000000a"])
    assert clock.current_gpu(nvml) == (None, "GPU-5e1a0c2b-0000-4000-8000-00000000000c")
    assert clock.current_gpu(None) == (None, "GPU-5e1a0c2b-0000-4000-8000-00000000000c")
    assert clock.ClockSampler(nvml, None).report() == clock.UNKNOWN_CLOCKS  # not GPU 0's clocks
