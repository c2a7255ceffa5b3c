"""Sequence to sequence: the encoder-decoder (``model``), greedy and beam decoding (``decode``), the
free-running metrics (``metrics``), professor forcing (``professor``) and the study's tables
(``study``). The data are ``data.pairs``; the kind that plugs them into training is ``kinds.pairs``."""
