"""sensor_msgs/Image payloads <-> numpy, without importing rclpy (the node passes the message fields).

Errors name the topic, the encoding and the size, so a misconfigured camera driver is found at once.
"""

from __future__ import annotations

import numpy as np

from optimus_control.errors import SensorDataError

COLOUR_ENCODINGS = ("rgb8", "bgr8", "rgba8", "bgra8")
DEPTH_ENCODINGS = ("32FC1", "16UC1")  # metres (float) or millimetres (uint16, as many real drivers send)


def _rows(topic: str, encoding: str, height: int, width: int, step: int, data, channels: int, itemsize: int) -> np.ndarray:
    row_bytes = width * channels * itemsize
    if height <= 0 or width <= 0:
        raise SensorDataError(f"{topic}: empty image ({width}x{height})")
    if step < row_bytes or len(data) < step * height:
        raise SensorDataError(f"{topic}: {encoding} image {width}x{height} needs step >= {row_bytes} and "
                              f"{row_bytes * height} bytes, got step {step} and {len(data)} bytes")
    buf = np.frombuffer(bytes(data) if not isinstance(data, (bytes, bytearray, memoryview)) else data, dtype=np.uint8)
    return buf[: step * height].reshape(height, step)[:, :row_bytes]


def colour_image_to_rgb(topic: str, encoding: str, height: int, width: int, step: int, data) -> np.ndarray:
    """(H, W, 3) uint8 RGB from an rgb8/bgr8/rgba8/bgra8 image."""
    if encoding not in COLOUR_ENCODINGS:
        raise SensorDataError(f"{topic}: colour image encoding '{encoding}' is not supported; "
                              f"expected one of {list(COLOUR_ENCODINGS)}")
    channels = 4 if encoding.endswith("a8") else 3
    px = _rows(topic, encoding, height, width, step, data, channels, 1).reshape(height, width, channels)[..., :3]
    if encoding.startswith("bgr"):
        px = px[..., ::-1]
    return np.ascontiguousarray(px)


def depth_image_to_metres(topic: str, encoding: str, height: int, width: int, step: int, data,
                          is_bigendian: bool) -> np.ndarray:
    """(H, W) float32 depth [m]; 16UC1 is read as millimetres. Invalid pixels stay NaN/inf/0 (filtered later)."""
    if encoding not in DEPTH_ENCODINGS:
        raise SensorDataError(f"{topic}: depth image encoding '{encoding}' is not supported; "
                              f"expected one of {list(DEPTH_ENCODINGS)} (32FC1 in metres or 16UC1 in millimetres)")
    order = ">" if is_bigendian else "<"
    if encoding == "32FC1":
        raw = _rows(topic, encoding, height, width, step, data, 1, 4)
        return np.ascontiguousarray(raw).view(order + "f4").reshape(height, width).astype(np.float32)
    raw = _rows(topic, encoding, height, width, step, data, 1, 2)
    return np.ascontiguousarray(raw).view(order + "u2").reshape(height, width).astype(np.float32) * np.float32(1e-3)
