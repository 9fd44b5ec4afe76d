"""Every component, action and event of the protocol, for sidekick-py 0.0.7 or tether.ui.

    python hero_all.py sidekick|tether URL [--events]

Without `--events` it replays, call for call, the script behind
`tests/fixtures/ui/sidekick-trace-0.0.7.jsonl` (plus one nested-ObservableValue change, which
sidekick-py drops and tether.ui sends) and shuts down. With `--events` it then sets `lab` to
"ready" and runs until the UI peer has sent every event; each callback prints to the console
`con`, and the click on `done` removes components, clears all and shuts down.
"""

from __future__ import annotations

import sys
from typing import Any

which, url = sys.argv[1], sys.argv[2]
with_events = "--events" in sys.argv[3:]
if which == "sidekick":
    import sidekick as sk
else:
    from tether import ui as sk

sk.set_url(url)
sk.wait_for_connection(20)

lab = sk.Label("hello", instance_id="lab")
col = sk.Column(instance_id="col")
row = sk.Row(instance_id="row", parent=col)
row.add_child(lab)
btn = sk.Button("Go", instance_id="btn", parent=row)
tb = sk.Textbox(value="v", placeholder="type", instance_id="tb")
md = sk.Markdown("# T", instance_id="md")
con = sk.Console(show_input=True, instance_id="con")
g = sk.Grid(3, 2, instance_id="g")
cv = sk.Canvas(100, 50, instance_id="cv")
viz = sk.Viz(instance_id="viz")

lab.text = "hi"
btn.text = "Stop"
tb.value = "x"
tb.placeholder = "p"
md.text = "*m*"
con.print("a", 1, sep="-", end="!")
con.clear()
g.set_color(0, 1, "red")
g.set_text(2, 1, "t")
g.set_text(1, 1, None)
g.clear_cell(0, 1)
g.clear()
cv.clear()
cv.draw_line(0, 0, 10, 10, line_color="red", line_width=2)
cv.draw_rect(1, 2, 3, 4, fill_color="blue")
cv.draw_circle(5, 5, 3)
cv.draw_polyline([(0, 0), (1, 1)])
cv.draw_polygon([(0, 0), (1, 1), (2, 0)], fill_color="green")
cv.draw_ellipse(5, 5, 4, 2)
cv.draw_text(1, 1, "T", text_color="black", text_size=12)
with cv.buffer() as buf:
    buf.draw_rect(0, 0, 5, 5)

viz.show("plain", {"a": 1, "b": [1, None]})
ol = sk.ObservableValue([1, 2])
viz.show("ol", ol)
ol.append(3)
ol[0] = 9
ol.insert(0, 0)
ol.pop()
ol.remove(9)
del ol[0]
od = sk.ObservableValue({"k": 1})
viz.show("od", od)
od["z"] = 2
del od["k"]
od.update(q=3)
os_ = sk.ObservableValue({1})
viz.show("os", os_)
os_.add(2)
os_.discard(1)
nested = sk.ObservableValue({"inner": sk.ObservableValue([1])})
viz.show("nested", nested)
nested["inner"].append(2)  # sidekick-py: nothing; tether.ui: append at ["inner", 1]
ol.set([7])
ol.clear()
viz.remove_variable("plain")


def finish() -> None:
    md.remove()
    cv.remove()
    sk.clear_all()


if not with_events:
    finish()
    sk.shutdown(wait=True)
    if which == "sidekick":
        import os

        os._exit(0)  # see below: sidekick-py 0.0.7 hangs at interpreter exit
    sys.exit(0)

done = sk.Button("Done", instance_id="done")


def on_btn(event: Any) -> None:
    con.print("clicked", event.instance_id, event.type)


def on_tb(event: Any) -> None:
    con.print("tb", event.value, tb.value)


async def on_con(event: Any) -> None:
    con.print("con", event.value)


def on_grid(event: Any) -> None:
    g.set_color(event.x, event.y, "blue")


async def on_canvas(event: Any) -> None:
    cv.draw_circle(event.x, event.y, 2)


def on_error(event: Any) -> None:
    con.print("error", event.instance_id, event.message)


def on_done(event: Any) -> None:
    finish()
    sk.shutdown()


btn.on_click(on_btn)
tb.on_submit(on_tb)
con.on_submit(on_con)
g.on_click(on_grid)
cv.on_click(on_canvas)
cv.on_error(on_error)
done.on_click(on_done)
lab.text = "ready"
sk.run_forever()
print("run_forever returned", flush=True)
if which == "sidekick":
    # sidekick-py 0.0.7 hangs at interpreter exit: Component.__del__ unregisters its handler,
    # which restarts the event-loop thread during finalization. Skip finalization.
    import os

    os._exit(0)
