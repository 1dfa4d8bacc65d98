// Loads a SavedModel with TensorFlow's C++ loader (what TF Serving's
// classic backend runs), calls `generate_from_seed` with only its required
// inputs and prints the video's shape and byte sum, or how it was refused.
//   load_saved_model EXPORT_DIR SEED NUM_FRAMES
#include <cstdint>
#include <iostream>
#include "tensorflow/cc/saved_model/loader.h"
#include "tensorflow/core/framework/tensor.h"
#include "tensorflow/core/public/session.h"

int main(int argc, char** argv) {
  tensorflow::SavedModelBundle bundle;
  tensorflow::SessionOptions session_options;
  tensorflow::RunOptions run_options;
  auto status = tensorflow::LoadSavedModel(session_options, run_options, argv[1],
                                           {"serve"}, &bundle);
  if (!status.ok()) { std::cout << "load failed: " << status.ToString() << "\n"; return 1; }
  const auto& signature = bundle.meta_graph_def.signature_def().at("generate_from_seed");
  tensorflow::Tensor seed(tensorflow::DT_INT64, tensorflow::TensorShape({1}));
  seed.flat<int64_t>()(0) = std::stoll(argv[2]);
  tensorflow::Tensor frames(tensorflow::DT_INT32, tensorflow::TensorShape({}));
  frames.scalar<int32_t>()() = std::stoi(argv[3]);
  std::vector<tensorflow::Tensor> outputs;
  status = bundle.session->Run({{signature.inputs().at("seed").name(), seed},
                                {signature.inputs().at("num_frames").name(), frames}},
                               {signature.outputs().at("video").name()}, {}, &outputs);
  if (!status.ok()) { std::cout << "refused: " << status.ToString() << "\n"; return 0; }
  const auto& video = outputs[0];
  uint64_t total = 0;
  auto data = video.flat<uint8_t>();
  for (int64_t i = 0; i < data.size(); ++i) total += data(i);
  std::cout << "video " << video.shape().DebugString() << " sum " << total << "\n";
  return 0;
}
