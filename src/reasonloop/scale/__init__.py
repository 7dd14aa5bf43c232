"""Running the sample → grade stages past one process (:mod:`reasonloop.scale.ray`)."""
