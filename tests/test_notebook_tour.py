"""notebooks/tour.ipynb stays valid and runnable: a structural check and a full execution (about a minute)."""

import json
from pathlib import Path

TOUR = Path(__file__).resolve().parents[1] / "notebooks" / "tour.ipynb"


def _code_cells(notebook) -> list:
    return [cell for cell in notebook.cells if cell.cell_type == "code"]


def test_tour_is_valid_and_every_code_cell_compiles():
    import nbformat

    json.loads(TOUR.read_text())  # plain JSON
    notebook = nbformat.read(TOUR, as_version=4)
    nbformat.validate(notebook)
    cells = _code_cells(notebook)
    assert len(cells) >= 5
    for i, cell in enumerate(cells):
        compile(cell.source, f"tour.ipynb code cell {i}", "exec")
    # the committed tour is executed, in order, without errors
    assert [cell.execution_count for cell in cells] == list(range(1, len(cells) + 1))
    assert not [o for cell in cells for o in cell.outputs if o.output_type == "error"]


def test_tour_executes(tmp_path):
    import nbformat
    from nbclient import NotebookClient

    notebook = nbformat.read(TOUR, as_version=4)
    client = NotebookClient(notebook, timeout=600, kernel_name="python3",
                            resources={"metadata": {"path": str(tmp_path)}})
    client.execute()
    outputs = [o for cell in _code_cells(notebook) for o in cell.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    text = "".join(o.get("text", "") for o in outputs if o.output_type == "stream")
    assert "test DOS error" in text and "rotation accuracy" in text
