% Times VIFB's own metric code (metrics/metrics*.m of xingchenzhang/VIFB) under GNU Octave on
% (pair, method) triples of VIFB's shipped results, as VIFB's compute_metrics.m calls it:
% res = metrics<Name>(imgVI, imgIR, fused) on the imread images. Documentation and benchmark only;
% no test needs it. Run from the repository root (the shims in tools/octave_shims provide freqspace,
% blkproc and MATLAB's rgb2gray):
%   octave-cli tools/vifb_octave_time.m VIFB_DIR OUT_CSV carLight_ADF walking_CBF ...
% Appends one line per metric to OUT_CSV: pair,method,metric,value,cpu_s,wall_s
% (cputime and tic/toc around the one call), and prints each triple's totals.
% Octave's imread returns a JPEG whose three components are equal as one channel; MATLAB returns
% three. The infrared JPEGs of 17 VIFB pairs are such files, so an image whose file has three
% components (read from the JPEG's SOF header) is expanded back to three channels, as MATLAB
% reads it, so that the code takes MATLAB's colour path.
pkg load image
args = argv();
vifb = args{1}; out = args{2}; triples = args(3:end);
addpath(fullfile(vifb, 'metrics'));
addpath(fullfile(pwd, 'tools', 'octave_shims'));   % shims last added = first on the path
names = {'Cross_entropy','Entropy','Mutinf','Psnr','Avg_gradient','Edge_intensity','Qabf', ...
         'Variance','Spatial_frequency','Rmse','Ssim','Qcb','Qcv'};

function n = jpeg_components(f)
  % number of components in the first SOF0/1/2 frame header of a JPEG file
  fid = fopen(f, 'r'); d = double(fread(fid, Inf, 'uint8')'); fclose(fid);
  i = 3; n = 0;
  while i + 9 <= numel(d)
    if d(i) ~= 255, error('%s: not a JPEG marker at byte %d', f, i); end
    mk = d(i + 1);
    if any(mk == [192 193 194]), n = d(i + 9); return; end
    i = i + 2 + d(i + 2) * 256 + d(i + 3);
  end
  error('%s: no SOF header', f);
end

function im = read_as_matlab(f)
  im = imread(f);
  if size(im, 3) == 1 && jpeg_components(f) == 3
    im = repmat(im, [1 1 3]);
  end
end

fid = fopen(out, 'a');
for t = 1:numel(triples)
  tr = triples{t};
  k = strfind(tr, '_'); pair = tr(1:k(1) - 1); method = tr(k(1) + 1:end);
  vi = read_as_matlab(fullfile(vifb, 'input', 'VI', [pair '.jpg']));
  ir = read_as_matlab(fullfile(vifb, 'input', 'IR', [pair '.jpg']));
  fu = read_as_matlab(fullfile(vifb, 'output', 'fused_images', [tr '.jpg']));
  cpu_all = 0; wall_all = 0;
  for m = 1:numel(names)
    f = str2func(['metrics' names{m}]);
    c0 = cputime(); w0 = tic();
    res = f(vi, ir, fu);
    wall = toc(w0); cpu = cputime() - c0;
    cpu_all = cpu_all + cpu; wall_all = wall_all + wall;
    fprintf(fid, '%s,%s,%s,%.17g,%.3f,%.3f\n', pair, method, names{m}, res, cpu, wall);
    fflush(fid);
  end
  printf('%s: %d x %d, %.1f s cpu, %.1f s wall\n', tr, columns(fu), rows(fu), cpu_all, wall_all);
  fflush(stdout);
end
fclose(fid);
