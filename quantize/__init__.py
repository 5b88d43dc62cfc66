"""edgeirst.quantize: INT8 (QDQ) and FP16 quantization of exported ONNX models.

Not available yet: ``edgeirst quantize`` says so. The TensorRT engine builder in
``edgeirst.runtime.engine_build`` already consumes QDQ ONNX files made by other tools.
"""
