% Runs VIFB's run_<METHOD>.m (https://github.com/xingchenzhang/VIFB, not part of mmif) under GNU
% Octave on the test pairs in ../inputs and writes the 8-bit results that VIFB's main_running.m
% would save, as lossless PNG, to ../<method>/<pair>.png.
% Usage (from the repository root, VIFB checked out at $VIFB_DIR; octave-image loaded):
%   METHODS="ADF FPDE" octave-cli crates/mmif-classic/tests/data/vifb/gen/make_refs.m
% GFCE needs the two MATLAB-compatibility shims in tools/octave_shims (Octave's blockproc passes the block
% itself, not MATLAB's block struct, and Octave has no freqspace): SHIMS=1 puts them first.
% Hybrid_MSD calls a MEX file (fast_blf.cpp, shipped as source with Windows/macOS binaries): build it for
% Octave with `mkoctfile --mex fast_blf.cpp` in a copy of methods/Hybrid_MSD/{fast_blf.cpp,include} and put
% that folder in MEX_DIR.
pkg load image
root = pwd;
if ~isempty(getenv('SHIMS'))
  addpath(fullfile(root, 'tools/octave_shims'));
end
if ~isempty(getenv('MEX_DIR'))
  addpath(getenv('MEX_DIR'));
end
vifb = getenv('VIFB_DIR');
data = fullfile(root, 'crates/mmif-classic/tests/data/vifb');
methods = strsplit(getenv('METHODS'), ' ');
files = dir(fullfile(data, 'inputs', '*_ir.png'));
for m = 1:numel(methods)
  name = methods{m};
  out = fullfile(data, lower(name));
  if ~exist(out, 'dir'), mkdir(out); end
  cd(fullfile(vifb, 'methods', name));
  addpath(genpath('./'));
  for k = 1:numel(files)
    pair = files(k).name(1:end-7);
    sIR.img = fullfile(data, 'inputs', [pair '_ir.png']);
    sVI.img = fullfile(data, 'inputs', [pair '_vi.png']);
    img = feval(['run_' name], sVI, sIR, 0);
    imwrite(img, fullfile(out, [pair '.png']));
    printf('%s %s done\n', name, pair);
  end
  rmpath(genpath('./'));
  cd(root);
end
