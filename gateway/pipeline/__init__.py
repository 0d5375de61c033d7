"""The request pipeline (admit → route → attempt → settle); ``pipeline.py`` says how it reads
and how a stage is added."""
