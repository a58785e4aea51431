// FFISubgridModel.h: use a Rhea-exported TorchScript FFI surrogate from C++.
//
// Layout of every four-flux tensor (`rhea export --layout not-main`, the default):
// F4[N, 4, 2, NF], axis 1 = (F_x, F_y, F_z, N) in cm^-3,
// axis 2 = neutrino / antineutrino, axis 3 = flavor. The exported module keeps the methods
// predict_all, predict_stability, predict_WhiskyTHC, X_from_F4, F4_from_y and
// convert_y_to_2flavor; this class wraps them for simulation codes.
//
//   FFISubgridModel<3> model("model.pt", torch::kCPU);   // or torch::Device("cuda:0")
//   auto prediction = model.predict_all(F4_initial);      // F4_final, growthrate, stability
//   auto F4_final = model.restrict_to_physical(prediction.F4_final);
#pragma once

#include <torch/script.h>

#include <algorithm>
#include <stdexcept>
#include <string>
#include <tuple>
#include <vector>

// The three predictions of one call, on the model's device and in its dtype.
struct FFIPrediction {
  torch::Tensor F4_final;    // [N, 4, 2, NF], cm^-3
  torch::Tensor growthrate;  // [N], 1/s
  torch::Tensor stability;   // [N], probability in [0, 1] that the cell is stable
};

// Checks that F4 has the shape [N, 4, 2, NF]; throws std::invalid_argument otherwise.
inline void ffi_check_F4_shape(const torch::Tensor& F4, int64_t NF) {
  if (F4.dim() != 4 || F4.size(1) != 4 || F4.size(2) != 2 || F4.size(3) != NF) {
    throw std::invalid_argument("F4 must have shape [N, 4, 2, " + std::to_string(NF) +
                                "] (F_x, F_y, F_z, N; nu/nubar; flavor), got " +
                                c10::str(F4.sizes()) + ".");
  }
}

// Minkowski product a.b = a_vec.b_vec - a_t b_t of four-vectors stored along `dim` (x,y,z,t).
inline torch::Tensor ffi_dot4_Minkowski(const torch::Tensor& a, const torch::Tensor& b,
                                        int64_t dim = 1) {
  const auto spatial = (a.narrow(dim, 0, 3) * b.narrow(dim, 0, 3)).sum(dim);
  return spatial - (a.select(dim, 3) * b.select(dim, 3));
}

// Mixes each sample's species toward their flavor average until every four-flux is
// future-directed and time-like (N >= 0 and |F| <= N). Flavor-summed number and flux of nu
// and of nubar are unchanged. Samples that are already physical come back bit for bit.
// F4: [N, 4, 2, NF]. Returns the corrected tensor (a new tensor; F4 is not modified).
inline torch::Tensor ffi_restrict_to_physical(const torch::Tensor& F4) {
  const int64_t NF = F4.size(3);
  const auto average = F4.sum(3, /*keepdim=*/true) / static_cast<double>(NF);  // [N,4,2,1]
  const auto average_all = average.expand_as(F4);

  // |F + alpha A|^2 - (N + alpha A_t)^2 = qa alpha^2 + qb alpha + qc, per species.
  const auto qa = ffi_dot4_Minkowski(average_all, average_all);  // [N,2,NF]
  const auto qb = 2.0 * ffi_dot4_Minkowski(average_all, F4);
  const auto qc = ffi_dot4_Minkowski(F4, F4);
  const auto N = F4.select(1, 3);
  const auto unphysical = (qc > 0) | (N < 0);

  // With a time-like average (qa < 0) the parabola is negative beyond its larger root.
  const auto radical = (qb * qb - 4.0 * qa * qc).clamp_min(0).sqrt();
  const auto root_plus = (-qb + radical) / (2.0 * qa);
  const auto root_minus = (-qb - radical) / (2.0 * qa);
  auto alpha = torch::maximum(root_plus, root_minus);
  // A null average (qa ~ 0): the quadratic degenerates to the linear root -qc/qb.
  const auto scale = qb.abs() + qc.abs();
  const auto degenerate = qa.abs() <= 1e-12 * scale;
  alpha = torch::where(degenerate, -qc / qb, alpha);
  // Only unphysical species ask for mixing, and only toward a time-like (or null) average
  // and by a finite, positive amount; otherwise no mixing can help and the species is kept.
  const auto fixable = unphysical & ((qa < 0) | degenerate) & torch::isfinite(alpha);
  alpha = torch::where(fixable, alpha.clamp_min(0),
                       torch::zeros_like(alpha));

  // One mixing fraction per sample (the largest any species needs), with a small margin so
  // that rounding cannot leave the critical species just outside the light cone.
  auto alpha_sample = std::get<0>(alpha.flatten(1).max(1));  // [N]
  alpha_sample = torch::where(alpha_sample > 0, alpha_sample * (1.0 + 1e-6) + 1e-12,
                              torch::zeros_like(alpha_sample));
  const auto a = alpha_sample.view({-1, 1, 1, 1});
  const auto fixed = (F4 + a * average_all) / (1.0 + a);
  return torch::where(a > 0, fixed, F4);
}

template <int NF>
class FFISubgridModel {
 public:
  // Sizes of the network input X (with the fluid-frame densities, do_fdotu) and of one
  // transfer matrix y [2, NF, 2, NF], as in the upstream interface.
  static constexpr int NX = NF * (1 + 2 * NF) + 2 * NF;
  static constexpr int Ny = (2 * NF) * (2 * NF);

  // The loaded TorchScript module, in eval mode, on `device`.
  torch::jit::script::Module model;
  torch::Device device;
  // The dtype of the model's parameters; inputs are converted to it.
  torch::Dtype dtype = torch::kFloat32;

  // Loads an exported model onto `device` (a CPU export loads on CUDA too, and vice versa).
  explicit FFISubgridModel(const std::string& filename, torch::Device device = torch::kCPU)
      : device(device) {
    model = torch::jit::load(filename, device);
    model.eval();
    if (model.hasattr("rhea_layout") && model.attr("rhea_layout").isString() &&
        model.attr("rhea_layout").toStringRef() == "main") {
      throw std::runtime_error(
          filename + " was exported with --layout main: its predict_all takes upstream main's "
          "layout [N, 2, NF, 4] and returns the growth rate in cm^-3. FFISubgridModel.h uses "
          "[N, 4, 2, NF]: export with --layout not-main, or call predict_all directly as "
          "upstream main's interface does.");
    }
    for (const auto& name : {"predict_all", "predict_stability", "predict_WhiskyTHC",
                             "X_from_F4", "F4_from_y", "convert_y_to_2flavor"}) {
      if (!model.find_method(name)) {
        throw std::runtime_error(filename + " is not a Rhea FFI model: it lacks the method " +
                                 name + ".");
      }
    }
    for (const auto& parameter : model.parameters()) {
      dtype = parameter.scalar_type();
      break;
    }
  }

  // F4 on the model's device and dtype, after checking its shape.
  torch::Tensor prepare(const torch::Tensor& F4) const {
    ffi_check_F4_shape(F4, NF);
    return F4.to(device, dtype).contiguous();
  }

  // F4_final [N,4,2,NF], growth rate [N] in 1/s and stability [N] for F4_initial [N,4,2,NF].
  FFIPrediction predict_all(const torch::Tensor& F4_initial) {
    c10::InferenceMode guard;
    auto out = model.get_method("predict_all")({prepare(F4_initial)}).toTuple();
    return {out->elements()[0].toTensor(), out->elements()[1].toTensor(),
            out->elements()[2].toTensor()};
  }

  // Probability [N] that each cell is stable.
  torch::Tensor predict_stability(const torch::Tensor& F4_initial) {
    c10::InferenceMode guard;
    return model.get_method("predict_stability")({prepare(F4_initial)}).toTensor();
  }

  // (y_dens, y_flux [N,2,NF,2,NF], growth rate [N] in 1/s, zero where stability > 0.5).
  std::tuple<torch::Tensor, torch::Tensor, torch::Tensor> predict_WhiskyTHC(
      const torch::Tensor& F4_initial) {
    c10::InferenceMode guard;
    auto out = model.get_method("predict_WhiskyTHC")({prepare(F4_initial)}).toTuple();
    return {out->elements()[0].toTensor(), out->elements()[1].toTensor(),
            out->elements()[2].toTensor()};
  }

  // The Lorentz-scalar network inputs [N, NX] of F4 [N,4,2,NF].
  torch::Tensor X_from_F4(const torch::Tensor& F4) {
    c10::InferenceMode guard;
    return model.get_method("X_from_F4")({prepare(F4)}).toTensor();
  }

  // Final F4 from the initial F4 and the transfer matrices y_dens, y_flux [N,2,NF,2,NF].
  torch::Tensor F4_from_y(const torch::Tensor& F4_initial, const torch::Tensor& y_dens,
                          const torch::Tensor& y_flux) {
    c10::InferenceMode guard;
    return model
        .get_method("F4_from_y")({prepare(F4_initial), y_dens.to(device, dtype),
                                  y_flux.to(device, dtype)})
        .toTensor();
  }

  // Folds mu and tau into one x flavor: y [N,2,NF,2,NF] -> [N,2,2,2,2].
  torch::Tensor convert_y_to_2flavor(const torch::Tensor& y) {
    c10::InferenceMode guard;
    return model.get_method("convert_y_to_2flavor")({y.to(device, dtype)}).toTensor();
  }

  // See ffi_restrict_to_physical: returns the corrected tensor.
  static torch::Tensor restrict_to_physical(const torch::Tensor& F4) {
    return ffi_restrict_to_physical(F4);
  }

  static torch::Tensor dot4_Minkowski(const torch::Tensor& a, const torch::Tensor& b) {
    return ffi_dot4_Minkowski(a, b, 1);
  }
};
