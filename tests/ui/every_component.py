"""Build every sidekick component through the tether relay, then answer the page's events.

Run by tests/browser/ui.test.mjs with the stock sidekick-py 0.0.7 from PyPI (tests/ui/setup.sh):

    python tests/ui/every_component.py ws://127.0.0.1:5163/?session=abc

The URL argument goes to `sidekick.set_url` (omit it to let sidekick find ws://localhost:5163
itself). `UI_CLIENT=tether.ui` runs the same script on tether's own Python API instead.

Every callback prints one line to stdout (flushed) that the test waits for:

    CALLBACK button btn
    CALLBACK textbox <value>
    CALLBACK console <value>
    CALLBACK grid <x> <y>
    CALLBACK canvas <x> <y>

Typing `quit` into the console shuts the connection down; the script then prints `BYE` and exits 0
(through os._exit: see the end of the file).
The last component spawned is the label `done`: once the page shows it, everything before it has
been delivered. Ids are fixed (instance_id=...) so the test can find each element by data-sk-id.
"""

import importlib
import os
import sys

sidekick = importlib.import_module(os.environ.get("UI_CLIENT", "sidekick"))


def say(*args):
    print(*args, flush=True)


if len(sys.argv) > 1:
    sidekick.set_url(sys.argv[1])

# --- leaves first, at root; moved into containers at the end (as Row(*children) does) -------

md = sidekick.Markdown(
    "# Every component\n\n"
    "Some **bold**, some *italic*, `code` and a [link](https://example.com/docs).\n\n"
    "<b>raw html stays text</b> and [a bad link](javascript:alert(1))\n\n"
    "- one\n- two\n",
    instance_id="md",
)

lab = sidekick.Label("hello", instance_id="lab")
lab.text = "hi there"

btn = sidekick.Button("Go", instance_id="btn")


@btn.click
def on_button(event):
    say("CALLBACK button", event.instance_id)
    btn.text = "Clicked"


tb = sidekick.Textbox(value="v", placeholder="type here", instance_id="tb")
tb.placeholder = "type something"


@tb.submit
def on_textbox(event):
    say("CALLBACK textbox", event.value)
    tb.value = event.value.upper()  # setValue: the page shows what the hero holds


con = sidekick.Console(text="boot\n", show_input=True, instance_id="con")
con.print("line one")
con.print("a", "b", sep="-", end="")
con.print("!")
con.print("x\ny")


@con.submit
def on_console(event):
    say("CALLBACK console", event.value)
    if event.value == "quit":
        sidekick.shutdown()
        return
    con.print(f"> {event.value}")


grid = sidekick.Grid(4, 3, instance_id="g")
grid.set_color(0, 0, "red")
grid.set_color(3, 2, "#00ff00")
grid.set_text(1, 1, "A")
grid.set_text(2, 0, "word")
grid.set_color(1, 2, "blue")
grid.clear_cell(1, 2)  # back to nothing
grid.set_text(3, 0, "tmp")
grid.set_text(3, 0, None)  # text removed
grid.set_color(1, 1, "orange")  # keeps the text "A"


@grid.click
def on_grid(event):
    say("CALLBACK grid", event.x, event.y)
    grid.set_color(event.x, event.y, "yellow")


cv = sidekick.Canvas(160, 100, instance_id="cv")
cv.draw_rect(0, 0, 40, 40, fill_color="red", line_color="red")
cv.draw_circle(80, 20, 15, fill_color="blue", line_color="blue")
cv.draw_line(0, 95, 150, 95, line_color="black", line_width=3)
cv.draw_polyline([(120, 5), (150, 5), (150, 30)], line_color="orange", line_width=2)
cv.draw_polygon([(10, 50), (40, 50), (25, 80)], fill_color="lime", line_color="lime")
cv.draw_ellipse(80, 65, 20, 10, fill_color="magenta", line_color="magenta")
cv.draw_text(110, 70, "Hi", text_color="black", text_size=14)
with cv.buffer() as buf:  # an offscreen buffer drawn onto the canvas on exit
    buf.draw_rect(130, 50, 20, 20, fill_color="purple", line_color="purple")


@cv.click
def on_canvas(event):
    say("CALLBACK canvas", event.x, event.y)
    cv.draw_circle(event.x, event.y, 3, fill_color="black")


viz = sidekick.Viz(instance_id="viz")
viz.show("plain", {"a": 1, "b": [1, None]})
ol = sidekick.ObservableValue([1, 2])
viz.show("ol", ol)
ol.append(3)
ol[0] = 9  # ol = [9, 2, 3]
od = sidekick.ObservableValue({"k": 1})
viz.show("od", od)
od["z"] = 2
del od["k"]  # od = {"z": 2}
viz.show("num", 3.5)
viz.show("gone", "soon removed")
viz.remove_variable("gone")

# a container with a child, removed as a whole (recursive remove)
tmp = sidekick.Column(sidekick.Label("bye", instance_id="bye"), instance_id="tmpcol")
tmp.remove()

# --- layout, bottom-up: each container is spawned, then its children are moved into it -------

left = sidekick.Column(lab, btn, tb, instance_id="left")
right = sidekick.Column(con, viz, instance_id="right")
top = sidekick.Row(left, right, instance_id="top")
bottom = sidekick.Row(grid, cv, instance_id="bottom")  # the canvas has drawn before it moves
page = sidekick.Column(md, top, bottom, instance_id="page")
sidekick.Label("in the bottom row, by parent=", parent=bottom, instance_id="byparent")

sidekick.Label("done", instance_id="done")
say("SCRIPT built")
sidekick.run_forever()
say("BYE")
# sidekick-py 0.0.7 hangs at interpreter exit after shutdown(): Component.__del__ unregisters its
# handler, which restarts the loop thread while Python is finalizing (threading.start waits
# forever). Leave without running finalizers.
os._exit(0)
