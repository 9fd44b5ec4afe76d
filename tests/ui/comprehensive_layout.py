"""A page that uses every sidekick component in nested rows and columns: the screenshot in
docs/ui.png (tests/ui/screenshot.mjs). In the spirit of sidekick's examples/comprehensive_layout.py
(written anew here, and with a Viz added). Runs on the stock sidekick-py 0.0.7:

    python tests/ui/comprehensive_layout.py [ws://127.0.0.1:5163]

then open http://127.0.0.1:8700/ui. The label `footer` is spawned last.
"""

import importlib
import os
import sys

sidekick = importlib.import_module(os.environ.get("UI_CLIENT", "sidekick"))
if len(sys.argv) > 1:
    sidekick.set_url(sys.argv[1])

console = sidekick.Console(show_input=True, instance_id="console")
console.print("Python is driving this page through tether's relay.")
console.print("Click a button, a grid cell or the canvas;")
console.print("type below and press Enter.")


def log(text):
    console.print(text)


@console.submit
def echo(event):
    log(f"you typed: {event.value}")


# a canvas drawn before it moves into its column: the drawing survives the move
canvas = sidekick.Canvas(300, 200, instance_id="canvas")
canvas.draw_rect(0, 0, 300, 140, fill_color="#cfe8ff", line_color="#cfe8ff")
canvas.draw_rect(0, 140, 300, 60, fill_color="#7cc576", line_color="#7cc576")
canvas.draw_circle(245, 45, 24, fill_color="#ffd54a", line_color="#f4b400", line_width=2)
canvas.draw_polygon([(60, 95), (110, 55), (160, 95)], fill_color="#c0392b", line_color="#8e2a20")
canvas.draw_rect(70, 95, 80, 60, fill_color="#f5e6c8", line_color="#8d6e63")
canvas.draw_rect(100, 120, 20, 35, fill_color="#8d6e63", line_color="#5d4037")
canvas.draw_ellipse(215, 160, 40, 10, fill_color="#4aa3df", line_color="#2e86c1")
canvas.draw_polyline([(10, 30), (40, 20), (70, 30)], line_color="#555", line_width=2)
canvas.draw_line(0, 140, 300, 140, line_color="#5a9e55", line_width=2)
with canvas.buffer() as buf:  # an offscreen buffer, drawn onto the canvas at the end of the block
    buf.draw_text(176, 190, "click to plant", text_color="#1b5e20", text_size=14)


@canvas.click
def plant(event):
    canvas.draw_circle(event.x, event.y, 6, fill_color="#e91e63", line_color="#ad1457")
    log(f"canvas clicked at ({event.x}, {event.y})")


grid = sidekick.Grid(8, 6, instance_id="grid")
palette = ["#fde2e4", "#fad2e1", "#e2ece9", "#bee1e6", "#cddafd", "#dfe7fd"]
for y in range(6):
    for x in range(8):
        if (x + y) % 3 == 0:
            grid.set_color(x, y, palette[(x * y) % len(palette)])
for x, y in [(2, 1), (3, 2), (1, 3), (2, 3), (3, 3)]:  # a glider
    grid.set_color(x, y, "#2d3a4a")
grid.set_text(6, 4, "♥")
grid.set_text(7, 5, "42")


@grid.click
def toggle(event):
    grid.set_color(event.x, event.y, "#ff9f1c")
    log(f"grid cell ({event.x}, {event.y})")


textbox = sidekick.Textbox(placeholder="Type and press Enter", instance_id="textbox")


@textbox.submit
def submitted(event):
    log(f"textbox: {event.value}")


counter = sidekick.ObservableValue([1, 2, 3])
settings = sidekick.ObservableValue({"speed": 1.5, "name": "glider", "alive": True})
viz = sidekick.Viz(instance_id="viz")
viz.show("counter", counter)
viz.show("settings", settings)
viz.show("point", {"x": 3, "y": 4})
viz.show("nothing", None)


def press(n):
    def handler(_event):
        counter.append(n)
        settings["speed"] = settings["speed"] + 0.5
        log(f"button {n} clicked")

    return handler


buttons = [
    sidekick.Button(f"Button {n}", on_click=press(n), instance_id=f"button-{n}") for n in (1, 2, 3)
]

sidekick.Column(
    sidekick.Markdown(
        "# Comprehensive layout\n"
        "Every **sidekick** component, nested in rows and columns, drawn by a *Python* script "
        "through [tether](https://example.com/tether)'s relay.",
        instance_id="title",
    ),
    sidekick.Row(
        sidekick.Column(sidekick.Label("Console output:"), console, instance_id="left-column"),
        sidekick.Column(
            sidekick.Label("Interactive components:"),
            sidekick.Row(*buttons, instance_id="button-row"),
            sidekick.Label("Enter text and press Enter:"),
            textbox,
            sidekick.Label("Variables:"),
            viz,
            instance_id="right-column",
        ),
        instance_id="main-row",
    ),
    sidekick.Row(
        sidekick.Column(sidekick.Label("Grid (click a cell):"), grid, instance_id="grid-column"),
        sidekick.Column(
            sidekick.Label("Canvas (click to plant):"), canvas, instance_id="canvas-column"
        ),
        instance_id="second-row",
    ),
    sidekick.Label("drawn by sidekick-py 0.0.7, rendered by tether's /ui", instance_id="footer"),
    instance_id="main-layout",
)

print("SCRIPT built", flush=True)
sidekick.run_forever()
os._exit(0)  # sidekick-py 0.0.7 can hang at interpreter exit (see every_component.py)
