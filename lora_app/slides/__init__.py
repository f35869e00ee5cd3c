"""The Present page's slides. Each one draws with the pages' own builders and cached core calls.

A slide is laid out for the screen it is shown on: :class:`SlideSpace` starts from the window's
height, takes off what each text, control and equation needs, and gives the rest to the figures,
whose cells then take the largest size that fits (``figures.row_layout``). A figure that would
not fit is dropped, and the slide says where to find it.

Rooms: :mod:`.layout` (the layout engine), :mod:`.toy` (the toy example's slides), :mod:`.real` (the real
transformer's, and two runs compared),
:mod:`.family` (QLoRA, DoRA and which GPU). :data:`DRAW` names every slide for the Present page.
"""
from __future__ import annotations

from .family import dora, gpu, qlora
from .real import real, real_grid, real_phi, real_rank
from .toy import adamw, backward, compare, equation, forward, matrices, matters, what, where, why

DRAW = {"what": what, "equation": equation, "why": why, "matrices": matrices, "compare": compare,
        "forward": forward, "backward": backward, "adamw": adamw, "where": where,
        "real": real, "real_grid": real_grid, "real_rank": real_rank, "real_phi": real_phi,
        "qlora": qlora, "dora": dora, "gpu": gpu, "matters": matters}
