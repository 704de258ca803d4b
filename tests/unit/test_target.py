"""stackyard.target.Target: marker environment and wheel compatibility for a release."""

from __future__ import annotations

from packaging.markers import Marker

from stackyard.target import Target

NUMPY_311 = "numpy-2.2.3-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl"


def test_platforms_for_glibc_2_36(bookworm: Target) -> None:
    p = bookworm.platforms()
    assert p[0] == "manylinux_2_36_x86_64"
    assert p[1] == "manylinux_2_35_x86_64"
    assert p[-1] == "linux_x86_64"
    assert p[-2] == "manylinux1_x86_64"
    assert p[-3] == "manylinux_2_5_x86_64"
    assert len(p) == 32 + 3 + 1  # 2_36..2_5, three legacy aliases, linux
    assert len(set(p)) == len(p)
    # legacy aliases come right after their glibc version
    assert p.index("manylinux2014_x86_64") == p.index("manylinux_2_17_x86_64") + 1
    assert p.index("manylinux2010_x86_64") == p.index("manylinux_2_12_x86_64") + 1
    assert p.index("manylinux_2_36_x86_64") < p.index("manylinux2014_x86_64") < p.index("manylinux1_x86_64")
    assert "manylinux_2_37_x86_64" not in p
    assert not any(x.startswith("musllinux") for x in p)


def test_platforms_follow_machine_and_glibc() -> None:
    p = Target("3.13", "2.41", "aarch64", "trixie").platforms()
    assert p[0] == "manylinux_2_41_aarch64"
    assert "manylinux2014_aarch64" in p
    assert all(x.endswith("_aarch64") for x in p)


def test_key() -> None:
    assert Target("3.11", "2.36", "x86_64", "bookworm").key == "bookworm-cp311-glibc2.36-x86_64"
    assert Target("3.13", "2.41", "x86_64", "trixie").key != Target("3.11", "2.36", "x86_64", "trixie").key


def test_wheel_priority_fits_and_rejects(bookworm: Target) -> None:
    assert bookworm.wheel_priority(NUMPY_311) is not None
    assert bookworm.wheel_priority("numpy-2.2.3-cp312-cp312-manylinux_2_17_x86_64.manylinux2014_x86_64.whl") is None
    assert bookworm.wheel_priority("numpy-2.2.3-cp311-cp311-musllinux_1_2_x86_64.whl") is None
    assert bookworm.wheel_priority("numpy-2.2.3-cp311-cp311-manylinux_2_17_aarch64.whl") is None
    assert bookworm.wheel_priority("numpy-2.2.3-cp311-cp311-manylinux_2_39_x86_64.whl") is None  # newer glibc
    assert bookworm.wheel_priority("numpy-2.2.3-cp311-cp311-win_amd64.whl") is None
    assert bookworm.wheel_priority("numpy-2.2.3-cp311-cp311-macosx_11_0_arm64.whl") is None
    assert bookworm.wheel_priority("not-a-wheel.whl") is None
    assert bookworm.wheel_priority("cryptography-44.0.0-cp39-abi3-manylinux_2_28_x86_64.whl") is not None
    assert bookworm.wheel_priority("cryptography-44.0.0-cp313-abi3-manylinux_2_28_x86_64.whl") is None


def test_wheel_priority_order(bookworm: Target) -> None:
    exact = bookworm.wheel_priority("x-1-cp311-cp311-manylinux_2_36_x86_64.whl")
    m2014 = bookworm.wheel_priority(NUMPY_311)
    abi3 = bookworm.wheel_priority("x-1-cp39-abi3-manylinux_2_28_x86_64.whl")
    pure = bookworm.wheel_priority("six-1.17.0-py3-none-any.whl")
    pure2 = bookworm.wheel_priority("six-1.17.0-py2.py3-none-any.whl")
    assert exact == 0
    assert None not in (m2014, abi3, pure, pure2)
    assert exact < m2014 < abi3 < pure
    assert pure == pure2


def test_marker_environment(bookworm: Target) -> None:
    env = bookworm.marker_environment()
    assert env["python_version"] == "3.11"
    assert env["platform_machine"] == "x86_64"
    assert env["sys_platform"] == "linux"
    assert Marker("python_version >= '3.10' and platform_system == 'Linux'").evaluate(env)
    assert not Marker("python_version < '3.11'").evaluate(env)
    assert Target("3.13", "2.41", "x86_64", "trixie").marker_environment()["python_version"] == "3.13"
    assert Target("3.9", "2.31", "x86_64", "bullseye").python_tuple == (3, 9)
