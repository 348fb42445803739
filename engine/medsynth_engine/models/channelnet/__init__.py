"""The channel-model framework the ``seg`` and ``mr2ct`` families share: a MONAI UNet on whichever MR sequences a
case has (``network``, ``inputs``), its fitting with sequence dropout and EMA (``fitting``), loading and sliding-window
prediction (``model``), and SynthSeg-style domain randomisation on the phantom's anatomy (``tissuepool``,
``randomise``). It is no family itself: it registers nothing."""
