"""Datasets: LJSpeech-layout speech corpora, the generated quick-start corpus (and image readers)."""
