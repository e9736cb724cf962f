"""Splitting pipe data into lines: reads cut anywhere, long lines, the output cap."""

from scripts_runner.logsink import LogSink


def lines_of(sink):
    return [(stream, line) for stream, lines in sink.take() for line in lines]


def test_lines_split_across_reads_and_multibyte_characters():
    sink = LogSink(max_bytes=10_000, max_line=100)
    data = "héllo wörld\nsecond\r\nthird".encode()
    for i in range(0, len(data), 3):
        sink.feed("stdout", data[i:i + 3])
    sink.feed("stderr", b"err\n")
    sink.close()
    assert lines_of(sink) == [("stdout", "héllo wörld"), ("stdout", "second"), ("stderr", "err"), ("stdout", "third")]
    assert sink.total_lines == 4


def test_long_line_is_cut_once_with_marker_and_rest_skipped():
    sink = LogSink(max_bytes=100_000, max_line=10)
    sink.feed("stdout", b"a" * 25)
    sink.feed("stdout", b"b" * 25 + b"\nshort\n")
    assert lines_of(sink) == [("stdout", "a" * 10 + " [line truncated at 10 bytes]"), ("stdout", "short")]
    assert sink.truncated


def test_invalid_utf8_and_nul_are_escaped_not_fatal():
    sink = LogSink(max_bytes=1000, max_line=100)
    sink.feed("stdout", b"ok \xff\xfe\nnul \x00 here\n\xc3\xa9 \xe2\x82\n")
    assert lines_of(sink) == [("stdout", "ok \\xff\\xfe"), ("stdout", "nul \\x00 here"), ("stdout", "\u00e9 \\xe2\\x82")]


def test_escaping_applies_to_cut_lines_too():
    sink = LogSink(max_bytes=1000, max_line=10)
    sink.feed("stdout", b"\x00" * 30 + b"\nend\n")
    [(_, first), (_, second)] = lines_of(sink)
    assert first == "\\x00" * 10 + " [line truncated at 10 bytes]" and second == "end"


def test_output_cap_stops_with_marker():
    sink = LogSink(max_bytes=20, max_line=100)
    sink.feed("stdout", b"0123456789\n0123456789\n0123456789\n")
    sink.feed("stdout", b"more\n")
    lines = lines_of(sink)
    assert lines[:2] == [("stdout", "0123456789"), ("stdout", "012345678")]  # cut at exactly 20 bytes
    assert lines[-1][0] == "system" and "output limit of 20 bytes" in lines[-1][1]
    assert sink.over_cap and sink.total_bytes == 20
