"""The sparse cell x gene benchmark (arrayloader-benchmarks, re-implemented on locally generated data).

Modules: ``datagen`` (counts matrix, stored as SOMA-like COO Parquet, ``.h5ad``, annbatch-style Zarr, TileDB-SOMA),
``blocks`` (the seed's block-spec grammar and the block-shuffle order), ``sources`` (reading those files),
``read_chunks`` and ``data_loader`` (the seed's two commands), ``methods``/``peers`` (what is measured),
``measure`` (one configuration, in this process or a fresh one), ``plots``/``report`` (speed vs memory),
``track`` (``loaderbench run --tracks sparse``) and ``cli`` (``loaderbench sparse ...``).
"""

from __future__ import annotations

from loaderbench import sections

#: results files written by the sparse commands (beside the image tracks' ``<track>.parquet``)
READ_CHUNKS_TRACK = "sparse_read_chunks"
EPOCHS_TRACK = "sparse_epochs"
#: the rows ``loaderbench run --tracks sparse`` stores as ``sparse.parquet``
RUN_TRACK = "sparse"

sections.register("sparse", html="loaderbench.sparse.report:sparse_sections",
                  terminal="loaderbench.sparse.report:sparse_terminal", own_files=("sparse",))
