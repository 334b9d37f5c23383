"""The cohort engine: pure array maths (lifetimes, the stock-flow recursion) on NumPy, the compiled CPU
engine (kernels/cohort.h through host.cpp) and the GPU kernel (kernels/cohort.cu through CuPy).

It knows nothing of xarray, files or the command line; everything above hands it (steps x scenarios)
arrays. `backend` chooses the engine and is the only module that imports CuPy.
"""
