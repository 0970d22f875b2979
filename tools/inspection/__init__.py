"""Photo defect inspection: a training-free inspector that learns "good" from reference photos
(``anomaly``), a user-supplied ONNX detector (``onnx_detector``), safe image opening (``images``),
uploads by id (``uploads``) and the ``inspect_image`` tool (``tool``). Heavy libraries (OpenCV,
onnxruntime, scikit-learn) are imported on first use, never when this package is imported."""
