import pytest

from forensics import plots


def sweep_rows():
    rows = []
    for cid, acc, p50 in (("c0", 0.7, 10.0), ("c1", 0.9, 30.0), ("c2", 0.8, 40.0)):
        for route, a in (("all", acc), ("code", acc - 0.1), ("math", acc + 0.05)):
            rows.append({"config_id": cid, "overrides": [f"x={cid}"], "route": route, "accuracy": a,
                         "p50_us": p50, "same_as": None, "error": None})
    return rows


def test_heatmaps_are_config_by_route():
    for figure in (plots.accuracy_heatmap(sweep_rows()), plots.latency_heatmap(sweep_rows())):
        heat = figure.data[0]
        assert list(heat.x) == ["all", "code", "math"] and len(heat.y) == 3
        assert len(heat.z) == 3 and all(len(row) == 3 for row in heat.z)
    assert plots.accuracy_heatmap(sweep_rows()).data[0].z[1][0] == pytest.approx(0.9)


def test_confusion_chart_counts_and_shares():
    figure = plots.confusion_chart({"code": {"code": 3, "math": 1}, "math": {"math": 2}})
    heat = figure.data[0]
    assert list(heat.x) == ["code", "math"] and list(heat.y) == ["code", "math"]
    assert [list(r) for r in heat.text] == [[3, 1], [0, 2]]
    assert heat.z[0][0] == pytest.approx(0.75)


def test_pareto_front_on_a_hand_made_example():
    points = [(10, 0.80), (20, 0.90), (30, 0.85), (5, 0.50), (20, 0.70), (40, 0.95)]
    assert plots.pareto_front(points) == [3, 0, 1, 5]
    assert plots.pareto_front([]) == []


def test_scatter_marks_the_front():
    figure = plots.latency_accuracy_scatter(sweep_rows())
    assert len(figure.data[0].x) == 3
    assert list(figure.data[1].x) == [10.0, 30.0]  # c2 is slower and less accurate than c1


def test_threshold_curve_and_offline_html(tmp_path):
    curve = [{"threshold": t / 10, "accuracy": 0.5 + t / 100} for t in range(5)]
    figure = plots.threshold_curve_chart(curve, chosen=0.3, default=0.2)
    assert len(figure.data[0].x) == 5 and len(figure.layout.shapes) == 2
    path = plots.write_html(figure, tmp_path / "deep" / "curve.html")
    html = path.read_text()
    assert 'src="https://cdn.plot.ly' not in html and len(html) > 1_000_000  # plotly.js embedded
