// FFISubgridAOTI.h: run a Rhea AOTInductor package (`rhea export RUN --format aoti`) from C++.
//
// An AOTInductor package holds predict_all compiled ahead of time for one kind of machine
// (CPU, or CUDA for a package exported on a GPU); it needs no Python and no TorchScript
// interpreter. Same prediction struct as FFISubgridModel:
//
//   FFISubgridAOTIModel<3> model("model.pt2");
//   FFIPrediction prediction = model.predict_all(F4_initial);
#pragma once

#include <torch/csrc/inductor/aoti_package/model_package_loader.h>

#include "FFISubgridModel.h"

#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

template <int NF>
class FFISubgridAOTIModel {
 public:
  std::unique_ptr<torch::inductor::AOTIModelPackageLoader> loader;
  torch::Device device;
  torch::Dtype dtype;

  // `device` must be the kind of device the package was compiled for.
  explicit FFISubgridAOTIModel(const std::string& filename, torch::Device device = torch::kCPU,
                               torch::Dtype dtype = torch::kFloat32)
      : device(device), dtype(dtype) {
    loader = std::make_unique<torch::inductor::AOTIModelPackageLoader>(
        filename, "model", /*run_single_threaded=*/false, /*num_runners=*/1,
        device.has_index() ? device.index() : static_cast<c10::DeviceIndex>(-1));
  }

  // F4_final [N,4,2,NF], growth rate [N] in 1/s and stability [N] for F4_initial [N,4,2,NF].
  FFIPrediction predict_all(const torch::Tensor& F4_initial) {
    ffi_check_F4_shape(F4_initial, NF);
    c10::InferenceMode guard;
    std::vector<torch::Tensor> inputs{F4_initial.to(device, dtype).contiguous()};
    std::vector<torch::Tensor> out = loader->run(inputs);
    if (out.size() != 3) {
      throw std::runtime_error("The AOTInductor package returned " + std::to_string(out.size()) +
                               " outputs; a Rhea FFI package returns 3.");
    }
    return {out[0], out[1], out[2]};
  }

  static torch::Tensor restrict_to_physical(const torch::Tensor& F4) {
    return ffi_restrict_to_physical(F4);
  }
};
