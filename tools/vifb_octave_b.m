% Reference outputs of VIFB's methods (developer B of issue 17) under GNU Octave, for
% crates/mmif-classic/tests/vifb_octave_b.rs. Documentation only: the tests read the committed PNGs.
% Needs the VIFB toolkit (github.com/xingchenzhang/VIFB) under data/VIFB and the image, signal
% packages. Run from the repository root:
%   octave-cli tools/vifb_octave_b.m TIF MGFF ...        reference PNGs for the committed inputs
%   octave-cli tools/vifb_octave_b.m --time IR VI TIF ... seconds per method on one pair (3 runs, best)
% Each method is called through VIFB's own interface, run_<NAME>(imgVI, imgIR, 0), so colour
% handling is VIFB's; its uint8 result is written as an 8-bit PNG. MGFF's code indexes three
% channels of the visible image (VIFB's visible images are all stored as RGB), so a gray visible
% source is handed to it as an RGB file with three equal channels. VIFB's run_GFF cannot run as
% shipped (it writes the sources as JPEGs under a placeholder path and reads them back from another
% folder), so GFF is called as GFF(uint8(cat(3, VI, IR))), the stack run_GFF builds, without the
% lossy JPEG round trip, on gray pairs only; its box filter (r = 45) needs sides of at least 92
% pixels, so smaller pairs are skipped.
pkg load image
pkg load signal
addpath('tools/octave_shims');  % freqspace, which Octave 7 lacks (HMSD_GF)
args = argv();
inputs = 'crates/mmif-classic/tests/data/vifb/inputs';
timing = numel(args) >= 3 && strcmp(args{1}, '--time');
if timing
  pairs = {{args{2}, args{3}, 'time'}};
  names = args(4:end);
else
  pairs = {};
  for c = {'tno_64x48', 'tno_150x111', 'road_160x120'}
    pairs{end+1} = {fullfile(inputs, [c{1} '_ir.png']), fullfile(inputs, [c{1} '_vi.png']), c{1}};
  end
  names = args;
end
for m = 1:numel(names)
  name = names{m};
  dir = fullfile('data/VIFB/methods', name);
  addpath(genpath(dir));
  run = str2func(['run_' name]);
  if strcmp(name, 'GFF')
    run = @(v, i, ~) GFF(uint8(cat(3, imread(v.img), imread(i.img))));
  end
  for p = 1:numel(pairs)
    [ir, vi, tag] = pairs{p}{:};
    if strcmp(name, 'GFF') && (min(size(imread(ir))(1:2)) < 92 || size(imread(vi), 3) == 3)
      continue;  % box filter too large for the pair; colour stacks are 4-D in run_GFF, not built here
    end
    if strcmp(name, 'MGFF') && size(imread(vi), 3) == 1
      rgb = [tempname() '.png'];
      imwrite(repmat(imread(vi), [1 1 3]), rgb);
      vi = rgb;
    end
    if timing
      best = inf;
      for rep = 1:3
        t = tic; run(struct('img', vi), struct('img', ir), 0); best = min(best, toc(t));
      end
      printf('%s %s %.4f s\n', name, tag, best);
    else
      out = run(struct('img', vi), struct('img', ir), 0);
      odir = fullfile('crates/mmif-classic/tests/data/vifb', lower(name));
      if ~exist(odir, 'dir'), mkdir(odir); end
      imwrite(uint8(out), fullfile(odir, [tag '.png']));
      printf('%s %s %dx%dx%d\n', name, tag, columns(out), rows(out), size(out, 3));
    end
  end
  rmpath(genpath(dir));
end
