"""The blob formats of metric history round-trip what the sampler sends."""

from __future__ import annotations

import numpy as np
import pytest

from dashboard.history.codec import (
    Buckets,
    CorruptBlob,
    decode_bucket_rows,
    decode_buckets,
    decode_samples,
    encode_bucket_rows,
    encode_buckets,
    encode_sample_rows,
    encode_samples,
)


def test_samples_round_trip_with_millisecond_timestamps():
    rng = np.random.default_rng(7)
    ts_ms = 1_760_000_000_123 + np.cumsum(rng.integers(950, 1050, 3600))
    values = rng.uniform(-1e6, 1e6, 3600)
    got_ts, got_values = decode_samples(encode_samples(ts_ms, values))
    np.testing.assert_array_equal(got_ts, ts_ms)
    np.testing.assert_array_equal(got_values, values.astype(np.float32))


def test_integers_below_2_24_and_special_values_survive_exactly():
    values = np.array([0, 1, 100, 16_777_215, -3, 0.5, 1e-30, 3.4e38])
    ts_ms = np.arange(len(values), dtype=np.int64) * 1000
    _ts, got = decode_samples(encode_samples(ts_ms, values))
    np.testing.assert_array_equal(got, values.astype(np.float32))


def test_a_single_sample_and_irregular_gaps_round_trip():
    ts, values = decode_samples(encode_samples(np.array([42]), np.array([1.5])))
    assert ts.tolist() == [42] and values.tolist() == [1.5]
    ts_ms = np.array([0, 1, 3_599_999, 3_600_000, 3_600_100], dtype=np.int64)
    got_ts, _ = decode_samples(encode_samples(ts_ms, np.zeros(5)))
    assert got_ts.tolist() == ts_ms.tolist()


def test_steady_sensor_data_packs_into_a_few_bytes_a_sample():
    rng = np.random.default_rng(1)
    ts_ms = 1_760_000_000_000 + np.arange(3600) * 1000 + rng.integers(-3, 4, 3600)
    temperature_c = np.clip(60 + np.cumsum(rng.integers(-1, 2, 3600)) // 10, 30, 90)
    blob = encode_samples(ts_ms, temperature_c)
    assert len(blob) / 3600 < 2.0, len(blob)


def test_buckets_round_trip_and_merge():
    buckets = Buckets.empty(60)
    buckets.merge_at(
        np.array([0, 5]),
        Buckets(
            np.array([2, 1], np.uint32),
            np.array([3.0, 7.0]),
            np.array([1, 7], np.float32),
            np.array([2, 7], np.float32),
        ),
    )
    again = decode_buckets(encode_buckets(buckets))
    assert again.count[[0, 5, 6]].tolist() == [2, 1, 0]
    assert again.total[[0, 5]].tolist() == [3.0, 7.0]
    assert (again.low[0], again.high[0]) == (1.0, 2.0)
    assert np.isinf(again.low[6]) and np.isinf(again.high[6])
    again.merge_at(
        np.array([0]),
        Buckets(
            np.array([1], np.uint32), np.array([-4.0]), np.array([-4], np.float32), np.array([-4], np.float32)
        ),
    )
    assert (again.count[0], again.total[0], again.low[0], again.high[0]) == (3, -1.0, -4.0, 2.0)


def test_a_damaged_blob_is_reported_not_misread():
    blob = encode_samples(np.arange(10), np.arange(10))
    with pytest.raises(CorruptBlob):
        decode_samples(blob[:-5])
    with pytest.raises(CorruptBlob):
        decode_buckets(b"\x09" + encode_buckets(Buckets.empty(3))[1:])


@pytest.mark.parametrize("count", [1, 2, 10, 37])
def test_rows_encoded_together_are_the_bytes_each_row_encodes_to(count):
    rng = np.random.default_rng(count)
    ts_ms = 1_760_000_000_123 + np.cumsum(rng.integers(900, 1100, (5, count)), axis=1)
    values = rng.normal(size=(5, count)) * 1000
    assert encode_sample_rows(ts_ms, values) == [encode_samples(ts_ms[r], values[r]) for r in range(5)]


@pytest.mark.parametrize("slots", [60, 24])
def test_bucket_rows_encode_and_decode_as_single_blocks_do(slots):
    rng = np.random.default_rng(slots)
    rows = Buckets(
        count=rng.integers(0, 9, (4, slots)).astype(np.uint32),
        total=rng.normal(size=(4, slots)),
        low=rng.normal(size=(4, slots)).astype(np.float32),
        high=rng.normal(size=(4, slots)).astype(np.float32),
    )
    blobs = encode_bucket_rows(rows)
    assert blobs == [
        encode_buckets(Buckets(rows.count[r], rows.total[r], rows.low[r], rows.high[r])) for r in range(4)
    ]
    back = decode_bucket_rows(blobs, slots)
    for name in ("count", "total", "low", "high"):
        np.testing.assert_array_equal(getattr(back, name), getattr(rows, name))
        assert getattr(back, name).dtype == getattr(rows, name).dtype
    with pytest.raises(CorruptBlob):
        decode_bucket_rows([blobs[0][:-3]], slots)
    with pytest.raises(CorruptBlob):
        decode_bucket_rows(blobs, slots + 1)
